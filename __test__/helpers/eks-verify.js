'use strict';
// An EKS token verifier written from the server's rules (aws-iam-authenticator `Verify`,
// peers 1.1) and the SigV4 specification, independent of the code under test: it decodes the
// token, checks what the EKS server checks, and recomputes the signature with node:crypto.

const crypto = require('node:crypto');

const ALLOWED = new Set([
  'action',
  'version',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-security-token',
  'x-amz-signature',
  'x-amz-signedheaders',
]);

const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const sha256 = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key, s) => crypto.createHmac('sha256', key).update(s, 'utf8').digest();

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new Error(`bad X-Amz-Date ${s}`);
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

/**
 * Verifies `token` for `clusterId`; `secretFor(accessKeyId)` gives the signing secret.
 * Returns `{ accessKeyId, sessionToken, url, region, date }` or throws naming the failed check.
 */
function verifyEksToken(token, { clusterId, secretFor, now = Date.now(), checkAge = true }) {
  if (Buffer.byteLength(token) > 4096) throw new Error('token longer than 4096 bytes');
  if (!token.startsWith('k8s-aws-v1.')) throw new Error('no k8s-aws-v1. prefix');
  const b64 = token.slice('k8s-aws-v1.'.length);
  if (!/^[A-Za-z0-9_-]*$/.test(b64)) throw new Error('not unpadded base64url');
  const url = Buffer.from(b64, 'base64url').toString('utf8');
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new Error('scheme is not https');
  if (u.pathname !== '/') throw new Error('path is not /');
  if (!/^sts(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(u.hostname)) throw new Error(`unexpected host ${u.hostname}`);
  // Raw pairs, in order, decoded.
  const pairs = url
    .slice(url.indexOf('?') + 1)
    .split('&')
    .map((kv) => kv.split('=').map(decodeURIComponent));
  const seen = new Set();
  const q = {};
  for (const [k, v] of pairs) {
    const lk = k.toLowerCase();
    if (!ALLOWED.has(lk)) throw new Error(`query parameter ${k} not allowed`);
    if (seen.has(lk)) throw new Error(`duplicate query parameter ${k}`);
    seen.add(lk);
    q[k] = v;
  }
  if (q.Action !== 'GetCallerIdentity') throw new Error('Action is not GetCallerIdentity');
  if (q['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') throw new Error('bad algorithm');
  const signed = (q['X-Amz-SignedHeaders'] || '').split(';');
  if (!signed.includes('x-k8s-aws-id')) throw new Error('x-k8s-aws-id is not signed');
  const expires = Number(q['X-Amz-Expires']);
  if (!(expires >= 0 && expires <= 900)) throw new Error('X-Amz-Expires outside 0..900');
  const date = parseAmzDate(q['X-Amz-Date']);
  if (checkAge && Math.abs(now - date) > 15 * 60 * 1000) throw new Error('X-Amz-Date older than 15 minutes');
  const [accessKeyId, day, region, service, terminator] = q['X-Amz-Credential'].split('/');
  if (service !== 'sts' || terminator !== 'aws4_request') throw new Error('bad credential scope');
  if (day !== q['X-Amz-Date'].slice(0, 8)) throw new Error('scope date differs from X-Amz-Date');
  const secret = secretFor(accessKeyId);
  if (!secret) throw new Error(`unknown access key ${accessKeyId}`);
  const canonicalQuery = pairs
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headerValues = { host: u.host, 'x-k8s-aws-id': String(clusterId).trim().replace(/\s+/g, ' ') };
  const canonicalHeaders = signed.map((h) => `${h}:${headerValues[h]}\n`).join('');
  const canonicalRequest = ['GET', '/', canonicalQuery, canonicalHeaders, signed.join(';'), sha256('')].join('\n');
  const scope = `${day}/${region}/sts/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', q['X-Amz-Date'], scope, sha256(canonicalRequest)].join('\n');
  const key = ['aws4_request'].reduce(
    (k, part) => hmac(k, part),
    hmac(hmac(hmac(`AWS4${secret}`, day), region), 'sts'),
  );
  const expected = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  if (expected !== q['X-Amz-Signature']) throw new Error('signature mismatch');
  return { accessKeyId, sessionToken: q['X-Amz-Security-Token'], url, region, host: u.hostname, date };
}

module.exports = { verifyEksToken };
