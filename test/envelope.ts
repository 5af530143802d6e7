// The shape of Cloudflare's v4 envelope, shared by the workerd and the
// end-to-end suites (types only, so it loads in either runtime).
export type { CsrRecord } from "../src/tenant/records";

export interface Envelope<T = unknown> {
  success: boolean;
  errors: Array<{ code: number; message: string; source?: { pointer: string } }>;
  messages: Array<{ code: number; message: string }>;
  result: T;
  result_info?: { count: number; page: number; per_page: number; total_count: number; total_pages: number };
}
