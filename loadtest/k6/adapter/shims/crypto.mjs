// `k6/crypto`: hmac() and the hash helpers, over node:crypto, with k6's output encodings.
import nodeCrypto from 'node:crypto';

function output(buffer, encoding) {
  switch (encoding) {
    case 'hex': return buffer.toString('hex');
    case 'base64': return buffer.toString('base64');
    case 'base64url': return buffer.toString('base64url') + '='.repeat((4 - (buffer.toString('base64url').length % 4)) % 4);
    case 'base64rawurl': return buffer.toString('base64url');
    case 'binary': return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
    default: throw new Error(`k6 adapter: unsupported output encoding ${encoding}`);
  }
}

const asInput = (value) => (typeof value === 'string' ? value : Buffer.from(value));

export function hmac(algorithm, secret, input, encoding) {
  return output(nodeCrypto.createHmac(algorithm, asInput(secret)).update(asInput(input)).digest(), encoding);
}

const hash = (algorithm) => (input, encoding) => output(nodeCrypto.createHash(algorithm).update(asInput(input)).digest(), encoding);
export const sha256 = hash('sha256');
export const sha512 = hash('sha512');
export const sha1 = hash('sha1');
export const md5 = hash('md5');

export function randomBytes(size) {
  const buffer = nodeCrypto.randomBytes(size);
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

export default { hmac, sha256, sha512, sha1, md5, randomBytes };
