/**
 * Hands a job to the deployed job runner: one SQS message per job, whose body is only the job id. The
 * job row (app.jobs) is the truth; the message only wakes a runner. So a message may be lost (the send
 * failed after the commit, the process died between the commit and the send) or delivered twice:
 *  - lost: the job sweeper (functions/jobs/sweep.ts, on a schedule) sends again every open job that no
 *    runner has moved for a while;
 *  - twice: the runner claims a job with a lease and runs only its recorded next step, so a second
 *    delivery of a running or finished job does nothing.
 * Locally no queue is configured (JOB_QUEUE_URL unset): the stack's in-process runner polls the rows.
 */
import { createHash } from 'node:crypto';
import { AwsJsonClient, type AwsServiceOptions } from './aws-json';
import { AWS_MAX_ATTEMPTS, AWS_REQUEST_HANDLER } from './aws-timeouts';
import { backgroundConfig, config } from './config';
import { isUuid } from './tenant';

/** The message every job runner reads. */
export interface JobMessage {
  readonly jobId: string;
}

export interface JobQueue {
  /** Sends the job's id to the runners; resolves once the queue accepted it (a no-op without a queue). */
  enqueue(jobId: string): Promise<void>;
}

/** Reads a message body; `undefined` for anything that is not `{ "jobId": "<uuid>" }`. */
export function parseJobMessage(body: string): JobMessage | undefined {
  try {
    const value = JSON.parse(body) as { jobId?: unknown };
    return typeof value === 'object' && value !== null && isUuid(value.jobId) ? { jobId: value.jobId } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An SQS client for SendMessage: the small JSON-protocol client (aws-json.ts) with the SDK client's
 * name, endpoint, signing name, target and query-compatibility header, and this project's timeouts and
 * retries (aws-timeouts.ts).
 */
export function sqsClient(options: AwsServiceOptions): AwsJsonClient {
  return new AwsJsonClient({
    clientName: 'SQSClient',
    signingName: 'sqs',
    targetPrefix: 'AmazonSQS',
    jsonVersion: '1.0',
    headers: { 'x-amzn-query-mode': 'true' },
    requestHandler: AWS_REQUEST_HANDLER,
    maxAttempts: AWS_MAX_ATTEMPTS,
    ...options,
  });
}

/** A queue over `sqs` at `queueUrl`; without a URL, a queue that sends nothing (the local stack polls). */
export function createJobQueue(options: { readonly sqs?: AwsJsonClient; readonly queueUrl?: string }): JobQueue {
  const { sqs, queueUrl } = options;
  if (queueUrl === undefined || sqs === undefined) return { enqueue: async () => undefined };
  return {
    async enqueue(jobId) {
      if (!isUuid(jobId)) throw new Error('a job id is a UUID');
      const message: JobMessage = { jobId };
      const body = JSON.stringify(message);
      const out = await sqs.call<{ MD5OfMessageBody?: string }>('SendMessage', { QueueUrl: queueUrl, MessageBody: body });
      // What the SDK's SQS client checks too (middleware-sdk-sqs): the digest of what the queue received.
      if (out.MD5OfMessageBody !== createHash('md5').update(body).digest('hex')) throw new Error('InvalidChecksumError');
    },
  };
}

let containerQueue: JobQueue | undefined;

/** The container's job queue, from `config()` (JOB_QUEUE_URL). */
export function jobQueue(): JobQueue {
  if (!containerQueue) {
    const { aws } = config();
    const queueUrl = backgroundConfig().jobQueueUrl;
    containerQueue = createJobQueue({
      queueUrl,
      sqs: queueUrl === undefined
        ? undefined
        : // Without a configured endpoint, the queue URL's origin, as the SDK's SQS client does (useQueueUrlAsEndpoint).
          sqsClient({ region: aws.region, endpoint: aws.endpoint ?? new URL(queueUrl).origin }),
    });
  }
  return containerQueue;
}
