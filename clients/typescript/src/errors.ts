import type { components } from "./schema.js";

/** Every stable error code the API answers (from openapi.yaml), plus `network_error`. */
export type ErrorCode = components["schemas"]["ErrorCode"] | "network_error";
type ErrorObject = components["schemas"]["ErrorDocument"]["errors"][number];

/**
 * A failed call. `code` is the API's stable code (`magic_link_invalid`, `rate_limited`, ...);
 * `reason` is `meta.reason` (why a link or code did not sign in: `expired`, `used`,
 * `superseded`, `unknown`, `invalid`, `verifier_mismatch`); `retryAfter` is seconds (429/503).
 */
export class ContactAuthError extends Error {
  override readonly name = "ContactAuthError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly reason?: string,
    readonly requestId?: string,
    readonly pointer?: string,
    readonly retryAfter?: number,
    readonly errors: readonly ErrorObject[] = [],
  ) {
    super(message);
  }
}

/** The typed error for a non-2xx response and its parsed JSON:API error document. */
export function toError(response: Response, body: unknown): ContactAuthError {
  const errors = (body as { errors?: ErrorObject[] } | undefined)?.errors ?? [];
  const first = errors[0];
  const retry = Number(response.headers.get("retry-after"));
  return new ContactAuthError(
    response.status,
    first?.code ?? (response.status >= 500 ? "internal_error" : "validation_error"),
    first?.detail ?? `HTTP ${response.status}`,
    first?.meta?.reason,
    first?.meta?.request_id ?? response.headers.get("x-request-id") ?? undefined,
    first?.source?.pointer,
    Number.isFinite(retry) && retry > 0 ? retry : undefined,
    errors,
  );
}

export function networkError(cause: unknown): ContactAuthError {
  const e = new ContactAuthError(0, "network_error", "The service could not be reached.");
  (e as { cause?: unknown }).cause = cause;
  return e;
}
