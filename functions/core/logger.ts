/**
 * Structured JSON log lines, byte for byte those of Powertools' Logger 2.36 (`@aws-lambda-powertools/logger`,
 * kept as a dev dependency: test/integration/logger-reference.test.ts runs the same calls through both and
 * compares what each writes to stdout and to stderr), for what the functions use of it, at a fraction of its
 * import cost (its modules, commons, the invoke store and a `Console` built per logger).
 *
 * What is reproduced:
 * - A line: `level`, `message`, `timestamp`, `service`, then from the Lambda context (`addContext`)
 *   `cold_start`, `function_arn`, `function_memory_size`, `function_name`, `function_request_id`, then
 *   `sampling_rate`, `xray_trace_id` (the Root of `_X_AMZN_TRACE_ID` or the runtime's invoke store, read at
 *   each line) and the context's `tenant_id`; then the appended keys in the order first appended, then the
 *   extras. Keys of the first part keep their place when an extra sets them; a top-level value that is
 *   `undefined`, `null` or '' is left out. Values are merged and copied as Powertools' `deepMerge` does
 *   (plain objects merged key by key, arrays by index, circular references and `__proto__`/`constructor`
 *   keys dropped), then serialised as its JSON replacer does: an `Error` as name, location (file:line of
 *   the first stack frame), message, stack (split in lines in dev mode), cause (an Error's formatted the
 *   same), then its other enumerable properties; a bigint as its decimal text; a circular reference left
 *   out.
 * - `timestamp`: ISO 8601 in UTC, or with `TZ` set to a zone other than UTC, local time with its offset
 *   (an unknown zone: UTC, and one warning on the global console).
 * - Levels TRACE 6, DEBUG 8, INFO 12, WARN 16, ERROR 20, CRITICAL 24, SILENT 28: `AWS_LAMBDA_LOG_LEVEL`
 *   (Lambda's advanced logging controls; FATAL is CRITICAL) over the constructor's `logLevel` (with the
 *   mismatch warning) over `POWERTOOLS_LOG_LEVEL` over `LOG_LEVEL`; INFO by default. `setLogLevel`.
 * - Sampling: `POWERTOOLS_LOGGER_SAMPLE_RATE` (0 to 1) is the line's `sampling_rate`, and with that
 *   probability a logger built turns to DEBUG, with the line Powertools writes then.
 * - Cold start: only where `AWS_LAMBDA_INITIALIZATION_TYPE` is `on-demand`, the first `getColdStart()` of
 *   a logger (its first `addContext`) is true.
 * - Keys: `appendKeys`, `removeKeys`, `resetKeys`; a reserved key (level, message, sampling_rate, service,
 *   timestamp) in them or in an extra is dropped with Powertools' warning. Extras: objects (their keys),
 *   an Error (`error`), a string (`extra`).
 * - Output: functions/core/console-line.ts (stdout for DEBUG and INFO, stderr for WARN and ERROR; the global
 *   console in dev mode, `POWERTOOLS_DEV`, which also indents the JSON by 4).
 *
 * Deliberately absent (the functions use none of it): persistent keys, `createChild`, the message as an
 * object, log buffering, the event log (`POWERTOOLS_LOGGER_LOG_EVENT`), `injectLambdaContext`/middy and
 * `refreshSampleRateCalculation`, correlation-id search, custom formatters, record order, JSON replacers
 * and config services, `ENVIRONMENT`, the `trace`/`critical` methods, Powertools' patch of
 * `console.trace`, and the per-invocation scoping of keys, context and level where one process serves
 * invocations concurrently (`AWS_LAMBDA_MAX_CONCURRENCY`): each request logs through its own logger
 * (observability.ts), so only the container's logger, outside requests, would share them.
 */
import type { Context } from 'aws-lambda';
import { lambdaTraceHeader, loggerEnvironment, timeZone } from './config';
import { writeLine, type ConsoleMethod } from './console-line';

const LEVELS = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 } as const;

export type LogLevel = keyof typeof LEVELS;

const RESERVED_KEYS = ['level', 'message', 'sampling_rate', 'service', 'timestamp'];

/** What a line may carry beyond its message: an object's keys, an Error (as `error`), a string (as `extra`). */
export type LogExtra = Record<string, unknown> | Error | string | null | undefined;

export interface LoggerOptions {
  /** `service` of every line; else `POWERTOOLS_SERVICE_NAME`, else `service_undefined`. */
  readonly serviceName?: string;
  /** The level (any case), unless Lambda's advanced logging controls set one. */
  readonly logLevel?: string;
}

interface LambdaFields {
  readonly invokedFunctionArn: string;
  readonly coldStart: boolean;
  readonly awsRequestId: string;
  readonly memoryLimitInMB: string;
  readonly functionName: string;
  readonly functionVersion: string;
  readonly tenantId: string | undefined;
}

function isLevel(name: string | undefined): name is LogLevel {
  return typeof name === 'string' && name in LEVELS;
}

function levelName(level: number): LogLevel {
  return (Object.keys(LEVELS) as LogLevel[]).find((name) => LEVELS[name] === level)!;
}

export class Logger {
  readonly #service: string;
  readonly #dev: boolean;
  readonly #onDemand: boolean;
  #coldStart: boolean;
  /** Lambda's advanced logging controls' level, when they set a valid one. */
  readonly #lambdaLevel: LogLevel | undefined;
  #level: number = LEVELS.INFO;
  readonly #sampleRate: number = 0;
  #context: LambdaFields | undefined;
  /** Appended keys' values (`undefined` once removed) and the order their keys were first appended in. */
  #keys: Record<string, unknown> = {};
  readonly #keyOrder = new Set<string>();
  readonly #warnedOnce = new Set<string>();
  /** Lines logged while the logger is being built: written, in order, once it is. */
  #pending: [number, string, LogExtra[]][] | undefined = [];
  #timeZoneWarned = false;

  constructor(options: LoggerOptions = {}) {
    const env = loggerEnvironment();
    this.#onDemand = env.onDemand;
    this.#coldStart = env.onDemand;
    this.#service = options.serviceName || env.serviceName || 'service_undefined';
    const lambdaLevel = env.lambdaLogLevel === 'FATAL' ? 'CRITICAL' : env.lambdaLogLevel;
    if (isLevel(lambdaLevel)) this.#lambdaLevel = lambdaLevel;
    this.#initialLevel(options.logLevel, env.logLevel);
    if (env.sampleRate >= 0 && env.sampleRate <= 1) {
      this.#sampleRate = env.sampleRate;
      // Powertools: crypto.randomInt(0, 100) / 100 <= rate.
      if (env.sampleRate && Math.floor(Math.random() * 100) / 100 <= env.sampleRate && this.#level > LEVELS.TRACE) {
        this.setLogLevel('DEBUG');
        this.debug('Setting log level to DEBUG due to sampling rate');
      }
    }
    this.#dev = env.devMode;
    const pending = this.#pending!;
    this.#pending = undefined;
    for (const [level, message, extras] of pending) this.#print(level, message, extras);
  }

  /** Lambda's advanced logging controls, else the constructor's level, else the environment's, else INFO. */
  #initialLevel(logLevel: string | undefined, envLevel: string): void {
    const requested = logLevel?.toUpperCase();
    if (this.#lambdaLevelWins(requested)) return;
    if (isLevel(requested)) this.#level = LEVELS[requested];
    else if (isLevel(envLevel)) this.#level = LEVELS[envLevel];
  }

  /** Where Lambda's advanced logging controls set a level, it is the level (and a more verbose request is warned of). */
  #lambdaLevelWins(requested: string | undefined): boolean {
    const lambdaLevel = this.#lambdaLevel;
    if (lambdaLevel === undefined) return false;
    this.#level = LEVELS[lambdaLevel];
    if (isLevel(requested) && this.#level > LEVELS[requested]) {
      this.#warnOnce(
        `Current log level (${requested}) does not match AWS Lambda Advanced Logging Controls minimum log level (${lambdaLevel}). This can lead to data loss, consider adjusting them.`,
      );
    }
    return true;
  }

  #warnOnce(message: string): void {
    if (this.#warnedOnce.has(message)) return;
    this.#warnedOnce.add(message);
    this.warn(message);
  }

  /** The level's name, `INFO`, `DEBUG`… */
  getLevelName(): LogLevel {
    return levelName(this.#level);
  }

  /** Sets the level, unless Lambda's advanced logging controls set one. Throws on an unknown name. */
  setLogLevel(logLevel: string): void {
    if (this.#lambdaLevelWins(logLevel)) return;
    if (!isLevel(logLevel)) throw new Error(`Invalid log level: ${logLevel}`);
    this.#level = LEVELS[logLevel];
  }

  /** True the first time only, and only where Lambda initialised the container on demand. */
  getColdStart(): boolean {
    if (!this.#onDemand || !this.#coldStart) return false;
    this.#coldStart = false;
    return true;
  }

  /** The invocation's context on every line from now on (this logger's cold start, the function, the request id). */
  addContext(context: Context): void {
    this.#context = {
      invokedFunctionArn: context.invokedFunctionArn,
      coldStart: this.getColdStart(),
      awsRequestId: context.awsRequestId,
      memoryLimitInMB: context.memoryLimitInMB,
      functionName: context.functionName,
      functionVersion: context.functionVersion,
      tenantId: (context as { tenantId?: string }).tenantId,
    };
  }

  /** Adds keys to every line from now on (objects merged into what a key holds, as Powertools merges). */
  appendKeys(attributes: Record<string, unknown>): void {
    const kept: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(attributes)) if (!this.#reserved(key)) kept[key] = value;
    deepMerge(this.#keys, kept);
    for (const key of Object.keys(kept)) this.#keyOrder.add(key);
  }

  removeKeys(keys: readonly string[]): void {
    for (const key of keys) {
      this.#keys[key] = undefined;
      this.#keyOrder.delete(key);
    }
  }

  /** Removes every appended key. */
  resetKeys(): void {
    this.#keys = {};
    this.#keyOrder.clear();
  }

  debug(message: string, ...extras: LogExtra[]): void {
    this.#log(LEVELS.DEBUG, message, extras);
  }

  info(message: string, ...extras: LogExtra[]): void {
    this.#log(LEVELS.INFO, message, extras);
  }

  warn(message: string, ...extras: LogExtra[]): void {
    this.#log(LEVELS.WARN, message, extras);
  }

  error(message: string, ...extras: LogExtra[]): void {
    this.#log(LEVELS.ERROR, message, extras);
  }

  #log(level: number, message: string, extras: LogExtra[]): void {
    if (level < this.#level) return;
    if (this.#pending) this.#pending.push([level, message, extras]);
    else this.#print(level, message, extras);
  }

  #reserved(key: string): boolean {
    if (!RESERVED_KEYS.includes(key)) return false;
    this.warn(`The key "${key}" is a reserved key and will be dropped.`);
    return true;
  }

  #print(level: number, message: string, extras: LogExtra[]): void {
    // In Powertools' order: the time and the trace first, the extras (and their warnings), then the timestamp's text.
    const now = new Date();
    const traceId = xrayTraceId();
    const added: Record<string, unknown> = {};
    for (const key of this.#keyOrder) if (this.#keys[key] !== undefined) added[key] = this.#keys[key];
    for (const extra of extras) {
      if (extra === null || extra === undefined) continue;
      if (extra instanceof Error) added.error = extra;
      else if (typeof extra === 'string') added.extra = extra;
      else for (const [key, value] of Object.entries(extra)) if (!this.#reserved(key)) added[key] = value;
    }
    const name = levelName(level);
    const context = this.#context;
    const line: Record<string, unknown> = {
      level: name,
      message,
      timestamp: this.#timestamp(now),
      service: this.#service,
      cold_start: context?.coldStart,
      function_arn: context?.invokedFunctionArn,
      function_memory_size: context?.memoryLimitInMB,
      function_name: context?.functionName,
      function_request_id: context?.awsRequestId,
      sampling_rate: this.#sampleRate,
      xray_trace_id: traceId,
      tenant_id: context?.tenantId,
    };
    deepMerge(line, added);
    const kept: Record<string, unknown> = {};
    for (const key in line) if (line[key] !== undefined && line[key] !== '' && line[key] !== null) kept[key] = line[key];
    const method: ConsoleMethod = level === LEVELS.CRITICAL ? 'error' : (name.toLowerCase() as ConsoleMethod);
    writeLine(method, JSON.stringify(kept, jsonReplacer(this.#dev), this.#dev ? 4 : 0), this.#dev);
  }

  /** ISO 8601 in UTC, or local time with its offset where `TZ` names another zone (Powertools' formatTimestamp). */
  #timestamp(now: Date): string {
    const zone = timeZone();
    if (!zone || zone.includes('UTC')) return now.toISOString();
    // A zone's format is built once and kept (dateFormat); an unknown zone fails to build, every time.
    let resolved = zone;
    let format: Intl.DateTimeFormat;
    try {
      format = dateFormat(zone);
    } catch {
      if (!this.#timeZoneWarned) {
        this.#timeZoneWarned = true;
        console.warn(`Invalid or unresolvable time zone: "${zone}" - falling back to UTC.`);
      }
      resolved = 'UTC';
      format = dateFormat(resolved);
    }
    const parts: Record<string, string> = {};
    for (const part of format.formatToParts(now)) parts[part.type] = part.value;
    const offset = resolved === zone ? -now.getTimezoneOffset() : 0;
    const hours = Math.abs(Math.floor(offset / 60)).toString().padStart(2, '0');
    const minutes = Math.abs(offset % 60).toString().padStart(2, '0');
    const millis = now.getMilliseconds().toString().padStart(3, '0');
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}.${millis}${offset >= 0 ? '+' : '-'}${hours}:${minutes}`;
  }
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();

function dateFormat(timeZone: string): Intl.DateTimeFormat {
  let format = dateFormats.get(timeZone);
  if (!format) {
    const two = '2-digit';
    format = new Intl.DateTimeFormat('en', { hourCycle: 'h23', year: 'numeric', month: two, day: two, hour: two, minute: two, second: two, timeZone });
    dateFormats.set(timeZone, format);
  }
  return format;
}

/** The Root of the invocation's trace header (the whole header when it has no `=`), read at each line. */
function xrayTraceId(): string | undefined {
  const header = lambdaTraceHeader()?.trim();
  if (!header) return undefined;
  if (!header.includes('=')) return header;
  let root: string | undefined;
  for (const field of header.split(';')) {
    const [key, value] = field.split('=');
    if (key === 'Root') root = value;
  }
  return root;
}

/** Powertools' JSON replacer: Errors formatted, bigints as text, circular references left out. */
function jsonReplacer(dev: boolean): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function replace(this: unknown, _key: string, value: unknown): unknown {
    let replaced = value;
    if (replaced instanceof Error) replaced = formatError(replaced, dev);
    if (typeof replaced === 'bigint') return replaced.toString();
    if (typeof replaced === 'object' && replaced !== null) {
      while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
      if (ancestors.includes(replaced)) return undefined;
      ancestors.push(replaced);
    }
    return replaced;
  };
}

/** An Error as Powertools' LogFormatter.formatError gives it; `dev`: the logger's dev mode (the stack as lines). */
function formatError(error: Error, dev: boolean): Record<string, unknown> {
  const { name, message, stack, cause, ...rest } = error as Error & Record<string, unknown>;
  const formatted: Record<string, unknown> = {
    name,
    location: codeLocation(error.stack),
    message,
    stack: dev && typeof stack === 'string' ? stack.split('\n') : stack,
    cause: cause instanceof Error ? formatError(cause, dev) : cause,
  };
  for (const key in error) {
    if (!['name', 'message', 'stack', 'cause'].includes(key)) formatted[key] = rest[key];
  }
  return formatted;
}

/** `file:line` of the first stack frame that names one, or ''. */
function codeLocation(stack: string | undefined): string {
  if (!stack) return '';
  const frame = /\(([^()]*?):(\d+?):(\d+?)\)\\?$/;
  for (const line of stack.split('\n')) {
    const match = frame.exec(line);
    if (match) return `${match[1]}:${Number(match[2])}`;
  }
  return '';
}

// ---------------------------------------------------------------------------------------------------
// Powertools' deepMerge (commons/deepMerge.js): how appended keys accumulate and how a line's values are
// copied before they are written.

const UNSAFE_KEYS = new Set(['__proto__', 'constructor']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A copy of `item` (plain objects and arrays copied deeply); `skip` for an array already being copied. */
function cloneItem(item: unknown, ancestors: unknown[]): { skip: boolean; value?: unknown } {
  if (isPlainObject(item)) {
    const cloned = {};
    ancestors.push(item);
    mergeRecursive(cloned, item, ancestors);
    ancestors.pop();
    return { skip: false, value: cloned };
  }
  if (Array.isArray(item)) {
    if (ancestors.includes(item)) return { skip: true };
    const cloned: unknown[] = [];
    ancestors.push(item);
    mergeArrayItems(cloned, item, ancestors);
    ancestors.pop();
    return { skip: false, value: cloned };
  }
  return { skip: false, value: item };
}

function mergeArrayItems(target: unknown[], source: readonly unknown[], ancestors: unknown[]): void {
  for (let i = 0; i < source.length; i++) {
    const item = source[i];
    const existing = target[i];
    const plain = isPlainObject(item);
    if (plain && ancestors.includes(item)) continue;
    if (plain && isPlainObject(existing)) {
      ancestors.push(item);
      mergeRecursive(existing, item, ancestors);
      ancestors.pop();
    } else if (Array.isArray(item) && Array.isArray(existing)) {
      if (!ancestors.includes(item)) {
        ancestors.push(item);
        mergeArrayItems(existing, item, ancestors);
        ancestors.pop();
      }
    } else if (item !== undefined || existing === undefined) {
      const copy = cloneItem(item, ancestors);
      if (!copy.skip) target[i] = copy.value;
    }
  }
}

function mergeRecursive(target: Record<string, unknown>, source: Record<string, unknown>, ancestors: unknown[]): void {
  for (const key of Object.keys(source)) {
    if (UNSAFE_KEYS.has(key)) continue;
    const value = source[key];
    const existing = target[key];
    if (Array.isArray(value) || isPlainObject(value)) {
      if (ancestors.includes(value)) continue;
      ancestors.push(value);
      if (Array.isArray(value)) {
        if (Array.isArray(existing)) mergeArrayItems(existing, value, ancestors);
        else {
          const fresh: unknown[] = [];
          mergeArrayItems(fresh, value, ancestors);
          target[key] = fresh;
        }
      } else if (isPlainObject(existing)) mergeRecursive(existing, value, ancestors);
      else {
        const fresh = {};
        mergeRecursive(fresh, value, ancestors);
        target[key] = fresh;
      }
      ancestors.pop();
    } else if (value !== undefined || existing === undefined) {
      target[key] = value;
    }
  }
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  mergeRecursive(target, source, [target, source]);
}
