/**
 * Errors of the AWS calls.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * AWS answered with an error: HTTP `status`, AWS `errorType` (from `x-amzn-ErrorType` or the
 * body's `__type`), its message and request id, and the operation that failed.
 *
 * @example
 * ```ts
 * import { AwsServiceError } from "./errors.ts";
 * const e = new AwsServiceError({
 *   operation: "DescribeSignalingChannel",
 *   status: 404,
 *   errorType: "ResourceNotFoundException",
 *   message: "The requested channel is not found or not active.",
 * });
 * console.log(e.message); // DescribeSignalingChannel failed: 404 ResourceNotFoundException: …
 * ```
 */
export class AwsServiceError extends KvsError {
  /** HTTP status. */
  readonly status: number;
  /** AWS error type, e.g. `ResourceNotFoundException`. */
  readonly errorType: string;
  /** The operation, e.g. `GetSignalingChannelEndpoint`. */
  readonly operation: string;
  /** `x-amzn-RequestId`, when present. */
  readonly requestId?: string;
  /** AWS's own message. */
  readonly awsMessage: string;
  /** Describe one AWS error answer. */
  constructor(
    fields: {
      operation: string;
      status: number;
      errorType: string;
      message: string;
      requestId?: string;
    },
    options?: ErrorOptions,
  ) {
    super(
      "AWS_HTTP",
      `${fields.operation} failed: ${fields.status} ${fields.errorType}: ${fields.message}` +
        (fields.requestId ? ` (request id ${fields.requestId})` : ""),
      options,
    );
    this.status = fields.status;
    this.errorType = fields.errorType;
    this.operation = fields.operation;
    this.requestId = fields.requestId;
    this.awsMessage = fields.message;
  }
}

/**
 * A call never got an answer (DNS, TCP, TLS, timeout), or the answer was unreadable.
 *
 * @example
 * ```ts
 * import { AwsNetworkError } from "./errors.ts";
 * const e = new AwsNetworkError("DescribeSignalingChannel", "https://kinesisvideo.us-west-2.amazonaws.com", "connection refused");
 * console.log(e.code); // "AWS_NETWORK"
 * ```
 */
export class AwsNetworkError extends KvsError {
  /** The operation. */
  readonly operation: string;
  /** The URL called (no credentials in it). */
  readonly url: string;
  /** Say which operation to which URL failed, and why. */
  constructor(operation: string, url: string, reason: string, options?: ErrorOptions) {
    super("AWS_NETWORK", `${operation} to ${url} failed: ${reason}`, options);
    this.operation = operation;
    this.url = url;
  }
}

/**
 * An AWS answer that does not have the documented shape.
 *
 * @example
 * ```ts
 * import { AwsResponseError } from "./errors.ts";
 * const e = new AwsResponseError("GetIceServerConfig", "IceServerList is not an array");
 * ```
 */
export class AwsResponseError extends KvsError {
  /** The operation. */
  readonly operation: string;
  /** Say which operation got an answer of the wrong shape. */
  constructor(operation: string, message: string, options?: ErrorOptions) {
    super("AWS_RESPONSE", `${operation}: ${message}`, options);
    this.operation = operation;
  }
}
