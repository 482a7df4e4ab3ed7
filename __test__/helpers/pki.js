'use strict';
// A throwaway PKI for loopback servers: a CA, server certificates for 127.0.0.1/localhost,
// and client certificates whose CN names the user.

const crypto = require('node:crypto');
const forge = require('node-forge');

function keyPair() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' })),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' })),
  };
}

function serial() {
  return '01' + crypto.randomBytes(8).toString('hex');
}

function createCA(commonName = 'test-ca') {
  const keys = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return {
    cert,
    key: keys.privateKey,
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
  };
}

/**
 * A leaf certificate signed by `ca`. `server: true` adds 127.0.0.1 and localhost. `keys`
 * reuses a key pair from `keyPair()` (RSA generation dominates issuing time).
 */
function issue(ca, { commonName, server = false, lifetimeMs = 3600_000, organizations = [], keys = keyPair() }) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + lifetimeMs);
  cert.setSubject([
    { name: 'commonName', value: commonName },
    ...organizations.map((o) => ({ name: 'organizationName', value: o })),
  ]);
  cert.setIssuer(ca.cert.subject.attributes);
  const extensions = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: server, clientAuth: !server },
  ];
  if (server) {
    extensions.push({
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip: '127.0.0.1' },
        { type: 2, value: 'localhost' },
      ],
    });
  }
  cert.setExtensions(extensions);
  cert.sign(ca.key, forge.md.sha256.create());
  return {
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
    notAfter: cert.validity.notAfter,
  };
}

module.exports = { createCA, issue, keyPair };
