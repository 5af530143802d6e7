// An edge id (issue 10): 1–64 of A-Z a-z 0-9 - _ . as the operator names
// its hosts. Ids of dots only ("." and "..") are refused: URL path
// normalization (RFC 3986 §5.2.4) removes them, so they could never be
// addressed as /admin/v1/edges/{edge_id}.
const EDGE_ID = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;

/** Whether `id` is a valid edge id. */
export function isEdgeId(id: string): boolean {
  return EDGE_ID.test(id);
}
