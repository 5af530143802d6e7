/**
 * The time, passed in rather than read from a global (as auth takes `now`,
 * and x509's `create(params, crypto = …)` takes its crypto), so a test can
 * fix it: a token's expiry, a certificate's validity, a renewal's due date.
 */
export type Clock = () => Date;

/** The machine's clock. */
export const systemClock: Clock = () => new Date();
