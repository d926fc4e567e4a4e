/** Placeholder status page: the status-page engineer replaces this module (same export). */
export function statusPageHtml(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ctera-lb status</title></head>
<body><h1>ctera-lb</h1><p>Status as JSON: <a href="/api/status">/api/status</a>, metrics: <a href="/metrics">/metrics</a>.</p></body></html>
`;
}
