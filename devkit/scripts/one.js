// One GET of TARGET_URL by one VU: the quickest run that still writes k6's HTTP metrics.
import http from 'k6/http';
import { check } from 'k6';

const TARGET_URL = __ENV.TARGET_URL;
if (!TARGET_URL) {
  throw new Error('TARGET_URL is required (pass --env TARGET_URL=http://127.0.0.1:PORT)');
}

export const options = { vus: 1, iterations: 1 };

export default function () {
  const res = http.get(TARGET_URL);
  check(res, { 'status is 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  const out = {};
  if (__ENV.SUMMARY_PATH) {
    out[__ENV.SUMMARY_PATH] = JSON.stringify(data);
  }
  const reqs = data.metrics.http_reqs ? data.metrics.http_reqs.values.count : 0;
  out.stdout = `one.js: ${reqs} request(s)\n`;
  return out;
}
