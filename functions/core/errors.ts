/**
 * The one error hierarchy of the runtime. Every error a route can raise knows its HTTP status and a
 * title and detail that are safe to show to the caller; the handler wrapper maps them to
 * `application/problem+json` in one place. Anything that is not an `AppError` becomes a generic 500
 * whose detail reveals nothing.
 */
export abstract class AppError extends Error {
  abstract readonly status: number;
  abstract readonly title: string;
  /** Extra response headers (e.g. `Retry-After`, `WWW-Authenticate`). */
  readonly headers: Record<string, string> = {};

  constructor(
    /** Safe to show to the caller: never an internal message, never another tenant's data. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = new.target.name;
  }

  /** The problem type, a stable URI fragment derived from the status. */
  get type(): string {
    return `https://problems.tenant-sovereign.dev/${this.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  }
}

export class BadRequestError extends AppError {
  readonly status = 400;
  readonly title = 'Bad Request';
}

export class UnauthorizedError extends AppError {
  readonly status = 401;
  readonly title = 'Unauthorized';
  override readonly headers = { 'WWW-Authenticate': 'Bearer realm="api", error="invalid_token"' };
}

export class ForbiddenError extends AppError {
  readonly status = 403;
  readonly title = 'Forbidden';
}

export class NotFoundError extends AppError {
  readonly status = 404;
  readonly title = 'Not Found';
}

export class MethodNotAllowedError extends AppError {
  readonly status = 405;
  readonly title = 'Method Not Allowed';
}

export class ConflictError extends AppError {
  readonly status = 409;
  readonly title = 'Conflict';
}

export class PayloadTooLargeError extends AppError {
  readonly status = 413;
  readonly title = 'Payload Too Large';
}

export class UnsupportedMediaTypeError extends AppError {
  readonly status = 415;
  readonly title = 'Unsupported Media Type';
}

export class QuotaExceededError extends AppError {
  readonly status = 429;
  readonly title = 'Too Many Requests';
  override readonly headers: Record<string, string>;

  /**
   * @param rate for a rate-limit refusal by the database: the tenant's bucket as it saw it (never sent
   *   to the caller; core/rate-admission.ts keeps a copy)
   */
  constructor(
    detail: string,
    headers: Record<string, string> = {},
    readonly rate?: { readonly tokens: number; readonly rps: number },
  ) {
    super(detail);
    this.headers = headers;
  }
}

/** A dependency (database, STS, S3, KMS) cannot be reached; the caller may retry. */
export class ServiceUnavailableError extends AppError {
  readonly status = 503;
  readonly title = 'Service Unavailable';
  override readonly headers = { 'Retry-After': '1' };
}

/** A tenant id that breaks the slug rule; raised before any SQL or AWS call. */
export class InvalidTenantIdError extends BadRequestError {
  constructor() {
    super('The tenant id is not valid.');
  }
}
