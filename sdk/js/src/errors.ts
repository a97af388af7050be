/** The error every promise of this SDK rejects with: `{code, message}` (plus `name`, `stack`). */
export class PortraitError extends Error {
  /** Vendor client code (27xx/28xx/29xx), or the server's `ErrorCode` as is. */
  readonly code: number;
  /** For server errors: the raw answer envelope. */
  readonly response?: unknown;

  constructor(code: number, message: string, response?: unknown) {
    super(message);
    this.name = 'PortraitError';
    this.code = code;
    if (response !== undefined) this.response = response;
  }

  /** Plain `{code, message}` (what `JSON.stringify` shows). */
  toJSON(): { code: number; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Whether a value is a PortraitError-like `{code, message}`. */
export function isPortraitError(e: unknown): e is PortraitError {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number';
}
