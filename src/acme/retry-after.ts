/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, which RFC
 * 8555 §6.6 (rate limits) and §7.5.1 / §7.4 (polling an authorization or an
 * order) ask clients to honour. Parsed by hand, not with Date.parse: V8
 * reads asctime dates in local time, and accepts much that is no HTTP-date.
 */

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;
const LONG_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;
const DAY = `(${DAYS.join("|")})`;
const MONTH = `(${MONTHS.join("|")})`;
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";

// RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms recipients must accept.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^(${LONG_DAYS.join("|")}), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/** The longest delay-seconds read (ten digits, about 317 years); longer is not a delay but garbage. */
const MAX_DIGITS = 10;

function utc(year: number, month: string, day: number, hour: number, minute: number, second: number): number | undefined {
  const monthIndex = MONTHS.indexOf(month as (typeof MONTHS)[number]);
  if (monthIndex < 0 || hour > 23 || minute > 59 || second > 60) return undefined;
  const time = Date.UTC(year, monthIndex, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 Feb over into March: such a date is not a date.
  const check = new Date(time);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== monthIndex) return undefined;
  return time;
}

/**
 * An HTTP-date as milliseconds since the epoch, or undefined if `text` is
 * none of RFC 9110's three forms. A two-digit RFC 850 year more than 50
 * years in the future is read as the past century (RFC 9110 §5.6.7).
 */
export function parseHttpDate(text: string, now: Date): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match) return utc(Number(match[4]), match[3]!, Number(match[2]), Number(match[5]), Number(match[6]), Number(match[7]));
  match = RFC850_DATE.exec(text);
  if (match) {
    let year = 2000 + Number(match[4]);
    if (year > now.getUTCFullYear() + 50) year -= 100;
    return utc(year, match[3]!, Number(match[2]), Number(match[5]), Number(match[6]), Number(match[7]));
  }
  match = ASCTIME_DATE.exec(text);
  if (match) return utc(Number(match[7]), match[2]!, Number(match[3]!.trim()), Number(match[4]), Number(match[5]), Number(match[6]));
  return undefined;
}

/**
 * A Retry-After value as whole seconds from `now` (0 when the date has
 * passed), or undefined when the header is absent or unreadable (the caller
 * then uses its own backoff: an unreadable header is no reason to fail).
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return text.length <= MAX_DIGITS ? Number(text) : undefined;
  const at = parseHttpDate(text, now);
  if (at === undefined) return undefined;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}
