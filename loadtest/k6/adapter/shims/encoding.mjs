// `k6/encoding`: base64 in k6's variants ('std', 'rawstd', 'url', 'rawurl').
function variant(encoding) {
  return encoding === 'url' || encoding === 'rawurl' ? 'base64url' : 'base64';
}

export function b64encode(input, encoding = 'std') {
  const buffer = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  let text = buffer.toString(variant(encoding));
  if (encoding === 'rawstd') text = text.replace(/=+$/, '');
  if (encoding === 'url') text += '='.repeat((4 - (text.length % 4)) % 4);
  return text;
}

export function b64decode(input, encoding = 'std', format) {
  const buffer = Buffer.from(input, variant(encoding));
  if (format === 's') return buffer.toString('utf8');
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

export default { b64encode, b64decode };
