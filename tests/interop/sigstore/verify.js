// An outside verifier for Sigstore bundles: @sigstore/verify (sigstore-js), which this project
// did not write, driven with trust material the caller states independently of treaty.
//
//   node verify.js key BUNDLE ALG KEY_B64 TSA_CHAIN_PEM...
//       A key-based bundle (treaty's export): the member's public key (ALG ed25519 or
//       ecdsa-p256, KEY_B64 the raw key as in the member entry) keyed by its treaty key id,
//       the TSA certificate chain (leaf first, then its CA) as the only trusted timestamp
//       authority; no transparency log, no CT log, one RFC 3161 timestamp required.
//   node verify.js key-at-hint BUNDLE ALG KEY_B64 TSA_CHAIN_PEM...
//       The same, with the key registered under the bundle's own hint, so that a bundle naming
//       another key reaches the signature check instead of stopping at the key lookup.
//   node verify.js keyless BUNDLE TRUSTED_ROOT_JSON TLOGS CTLOGS [ARTIFACT]
//       A keyless (Fulcio + Rekor) bundle against a trusted root, offline, with the number of
//       transparency-log entries and SCTs to require.
//
// Prints `OK ...` and exits 0, or `FAIL CODE MESSAGE` and exits 1; 2 for usage.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function pemCerts(text) {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map(
    (m) => new crypto.X509Certificate(m[0]).raw,
  );
}

function spkiOf(alg, raw) {
  if (alg === 'ed25519') {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') };
    return crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  }
  if (alg === 'ecdsa-p256') {
    const ecdh = crypto.ECDH.convertKey(raw, 'prime256v1', undefined, undefined, 'uncompressed');
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      x: ecdh.subarray(1, 33).toString('base64url'),
      y: ecdh.subarray(33, 65).toString('base64url'),
    };
    return crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  }
  throw new Error(`unknown algorithm ${alg}`);
}

function main(argv) {
  const [mode, bundlePath, ...rest] = argv;
  if (!bundlePath || !['key', 'key-at-hint', 'keyless'].includes(mode)) {
    console.error('usage: verify.js key|key-at-hint BUNDLE ALG KEY_B64 TSA_PEM... | keyless BUNDLE ROOT TLOGS CTLOGS [ARTIFACT]');
    return 2;
  }
  const json = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
  const bundle = bundleFromJSON(json);
  let trust;
  let options;
  let artifact;
  if (mode !== 'keyless') {
    const [alg, keyB64, ...pems] = rest;
    const raw = Buffer.from(keyB64, 'base64');
    const hint =
      mode === 'key'
        ? crypto.createHash('sha256').update(raw).digest('hex')
        : json.verificationMaterial.publicKey.hint;
    const chain = pems.flatMap((p) => pemCerts(fs.readFileSync(p, 'utf8')));
    const root = TrustedRoot.fromJSON({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [
        {
          subject: { organization: 'test', commonName: 'test tsa' },
          uri: 'http://127.0.0.1/',
          certChain: { certificates: chain.map((c) => ({ rawBytes: c.toString('base64') })) },
          validFor: { start: '2000-01-01T00:00:00Z' },
        },
      ],
    });
    trust = toTrustMaterial(root, { [hint]: { rawBytes: spkiOf(alg, raw) } });
    options = { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 1 };
  } else {
    const [rootPath, tlogs, ctlogs, artifactPath] = rest;
    trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8'))));
    options = { tlogThreshold: Number(tlogs), ctlogThreshold: Number(ctlogs), timestampThreshold: 1 };
    artifact = artifactPath ? fs.readFileSync(artifactPath) : undefined;
  }
  try {
    const signer = new Verifier(trust, options).verify(toSignedEntity(bundle, artifact));
    const who = signer.identity ? signer.identity.subjectAlternativeName : 'key';
    console.log(`OK ${who}`);
    return 0;
  } catch (e) {
    console.log(`FAIL ${e.code || e.name} ${e.message}`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
