// The simulators' embeddings: a deterministic vector per (model, text) — the same text always gives the
// same vector, different texts different ones — unit length, of the size asked. Real models are not
// available offline; what the gateway must keep (order, size, encoding, counting) is testable on these.
import { createHash } from 'node:crypto';

export function embeddingVector(model: string, input: string, dimensions: number): number[] {
  const values: number[] = [];
  let block = 0;
  while (values.length < dimensions) {
    const digest = createHash('sha256').update(`${model}\u0000${block++}\u0000${input}`).digest();
    for (let i = 0; i + 2 <= digest.length && values.length < dimensions; i += 2) {
      values.push(digest.readUInt16LE(i) / 32767.5 - 1);
    }
  }
  const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0)) || 1;
  // Rounded to what a float32 keeps, so float and base64 answers say the same numbers.
  return values.map((v) => Math.fround(v / norm));
}

/** A vector as OpenAI's base64: float32 little-endian bytes. */
export function float32Base64(vector: readonly number[]): string {
  const buffer = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => buffer.writeFloatLE(v, i * 4));
  return buffer.toString('base64');
}
