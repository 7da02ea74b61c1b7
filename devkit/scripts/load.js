// Load for the devkit target server (devkit/target.py); every knob comes from --env.
//
// No per-request tags: with the invocation's empty --system-tags, any tag set here would split
// each metric into several series, and percentiles of several series cannot be combined.
import http from 'k6/http';
import { check, sleep } from 'k6';

const TARGET_URL = __ENV.TARGET_URL;
if (!TARGET_URL) {
  // Thrown in the init context: k6 exits 107 before any request is made.
  throw new Error('TARGET_URL is required (pass --env TARGET_URL=http://127.0.0.1:PORT)');
}

function intEnv(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = parseInt(raw, 10);
  if (Number.isNaN(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got '${raw}'`);
  }
  return value;
}

const BASE_URL = TARGET_URL.replace(/\/+$/, '');
const FAIL_EVERY = intEnv('FAIL_EVERY', 5);
const SLOW_MS = intEnv('SLOW_MS', 0);
// A short think time keeps 3 VUs at a few hundred requests per second, so the target (which
// shares the test's event loop) is never the bottleneck.
const PAUSE_MS = intEnv('PAUSE_MS', 10);
// SPREAD_MS > 0 adds a delay that depends on the request (0..SPREAD_MS-1 ms), so latency has
// enough spread for percentiles to differ between the instances of a distributed run.
const SPREAD_MS = intEnv('SPREAD_MS', 0);

function okPath() {
  if (SLOW_MS === 0 && SPREAD_MS === 0) {
    return '/';
  }
  const spread = SPREAD_MS > 0 ? (__VU * 7 + __ITER * 13) % SPREAD_MS : 0;
  return `/slow?ms=${SLOW_MS + spread}`;
}

export const options = {
  vus: intEnv('VUS', 3),
  duration: __ENV.DURATION || '3s',
  thresholds: {
    http_req_failed: ['rate<' + (__ENV.MAX_FAIL_RATE || '0.5')],
    http_req_duration: ['p(95)<' + (__ENV.P95_MS || '1000')],
    checks: ['rate>0.1'],
  },
};

export default function () {
  const failing = FAIL_EVERY > 0 && __ITER % FAIL_EVERY === 0;
  const res = http.get(BASE_URL + (failing ? '/fail' : okPath()));
  check(res, {
    'status is 200': (r) => r.status === 200,
    'body is not empty': (r) => typeof r.body === 'string' && r.body.length > 0,
  });
  if (PAUSE_MS > 0) {
    sleep(PAUSE_MS / 1000);
  }
}

function fmt(value, digits) {
  return typeof value === 'number' ? value.toFixed(digits) : 'n/a';
}

export function handleSummary(data) {
  const out = {};
  if (__ENV.SUMMARY_PATH) {
    out[__ENV.SUMMARY_PATH] = JSON.stringify(data);
  }
  const metrics = data.metrics;
  const reqs = metrics.http_reqs ? metrics.http_reqs.values.count : 0;
  const failed = metrics.http_req_failed ? metrics.http_req_failed.values.rate : undefined;
  const p95 = metrics.http_req_duration ? metrics.http_req_duration.values['p(95)'] : undefined;
  const crossed = Object.entries(metrics)
    .filter(([, m]) => m.thresholds && Object.values(m.thresholds).some((t) => !t.ok))
    .map(([name]) => name);
  // Returning a stdout entry replaces k6's console summary; keep one line so logs show the run.
  out.stdout =
    `load.js: ${reqs} requests, failed rate ${fmt(failed, 4)}, p95 ${fmt(p95, 2)} ms, ` +
    `thresholds ${crossed.length ? 'crossed: ' + crossed.join(', ') : 'ok'}\n`;
  return out;
}
