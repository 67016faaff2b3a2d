// Image tokens: sizes read from PNG / JPEG / WebP headers, Gemini's 258-per-tile rule, and the 400
// for an image Google could not decode.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNREADABLE_IMAGE_MESSAGE, imageTokensByGoogleRule, readImageSize } from './images.ts';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { call, generate } from './test-helpers.ts';
import { countRequestTokens, utf8Bytes } from './tokens.ts';

const u32be = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const u16be = (n: number): number[] => [(n >>> 8) & 255, n & 255];
const u16le = (n: number): number[] => [n & 255, (n >>> 8) & 255];
const u24le = (n: number): number[] => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255];
const u32le = (n: number): number[] => [...u16le(n & 0xffff), ...u16le(n >>> 16)];
const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));
const b64 = (bytes: number[], tail = 0): string => Buffer.concat([Buffer.from(bytes), Buffer.alloc(tail, 7)]).toString('base64');

function png(width: number, height: number): number[] {
  return [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...u32be(13), ...ascii('IHDR'), ...u32be(width), ...u32be(height), 8, 6, 0, 0, 0, 0, 0, 0, 0];
}

/** A JPEG whose frame header comes after APP0, a DHT (C4, not a frame) and fill bytes. */
function jpeg(width: number, height: number, sof = 0xc0, appBytes = 14): number[] {
  const app0 = [0xff, 0xe0, ...u16be(appBytes + 2), ...Array<number>(appBytes).fill(0)];
  const dht = [0xff, 0xc4, ...u16be(5), 0, 1, 2];
  const frame = [0xff, 0xff, 0xff, sof, ...u16be(17), 8, ...u16be(height), ...u16be(width), 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return [0xff, 0xd8, ...app0, ...dht, ...frame, 0xff, 0xda, 0, 2];
}

function webp(kind: 'VP8 ' | 'VP8L' | 'VP8X', width: number, height: number): number[] {
  const body =
    kind === 'VP8 '
      ? [0, 0, 0, 0x9d, 0x01, 0x2a, ...u16le(width), ...u16le(height)]
      : kind === 'VP8L'
        ? [0x2f, ...u32le(((width - 1) | ((height - 1) << 14)) >>> 0)]
        : [0, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1)];
  return [...ascii('RIFF'), ...u32le(4 + 8 + body.length), ...ascii('WEBP'), ...ascii(kind), ...u32le(body.length), ...body];
}

describe('imageTokensByGoogleRule', () => {
  it('is 258 up to 384 × 384, then 258 per 768 × 768 tile', () => {
    expect(imageTokensByGoogleRule(1, 1)).toBe(258);
    expect(imageTokensByGoogleRule(384, 384)).toBe(258);
    expect(imageTokensByGoogleRule(385, 100)).toBe(258); // one tile
    expect(imageTokensByGoogleRule(768, 768)).toBe(258);
    expect(imageTokensByGoogleRule(769, 768)).toBe(516);
    expect(imageTokensByGoogleRule(1920, 1080)).toBe(258 * 3 * 2);
  });
});

describe('readImageSize', () => {
  it('reads PNG IHDR', () => {
    expect(readImageSize('image/png', b64(png(640, 480)))).toEqual({ width: 640, height: 480 });
  });

  it('walks JPEG segments to the first SOF, skipping DHT and fill bytes', () => {
    expect(readImageSize('image/jpeg', b64(jpeg(1024, 768)))).toEqual({ width: 1024, height: 768 });
    expect(readImageSize('image/jpeg', b64(jpeg(300, 200, 0xc2)))).toEqual({ width: 300, height: 200 }); // progressive
    // A 60 KB APP segment before the frame: the reader decodes that far, and no further.
    expect(readImageSize('image/jpeg', b64(jpeg(2000, 10, 0xcf, 60_000), 5_000_000))).toEqual({ width: 2000, height: 10 });
  });

  it('refuses JPEG markers that are not frames (DAC CC, JPG C8) and a scan before any frame', () => {
    expect(readImageSize('image/jpeg', b64(jpeg(10, 10, 0xcc)))).toBeUndefined();
    expect(readImageSize('image/jpeg', b64(jpeg(10, 10, 0xc8)))).toBeUndefined();
    expect(readImageSize('image/jpeg', b64([0xff, 0xd8, 0xff, 0xda, 0, 2]))).toBeUndefined();
  });

  it('reads WebP VP8, VP8L and VP8X', () => {
    expect(readImageSize('image/webp', b64(webp('VP8 ', 800, 600)))).toEqual({ width: 800, height: 600 });
    expect(readImageSize('image/webp', b64(webp('VP8L', 16383, 2)))).toEqual({ width: 16383, height: 2 });
    expect(readImageSize('image/webp', b64(webp('VP8X', 20000, 30)))).toEqual({ width: 20000, height: 30 });
  });

  it('gives undefined for corrupt, truncated or mislabelled data', () => {
    expect(readImageSize('image/png', 'AAAA')).toBeUndefined();
    expect(readImageSize('image/png', b64(png(10, 10)).slice(0, 20))).toBeUndefined(); // cut inside IHDR
    expect(readImageSize('image/png', b64(jpeg(10, 10)))).toBeUndefined();
    expect(readImageSize('image/jpeg', b64(png(10, 10)))).toBeUndefined();
    expect(readImageSize('image/png', b64(png(0, 10)))).toBeUndefined();
    expect(readImageSize('image/png', '')).toBeUndefined();
  });

  it('accepts base64url and an upper-case type', () => {
    const data = b64(png(100, 100)).replace(/\+/g, '-').replace(/\//g, '_');
    expect(readImageSize('IMAGE/PNG', data)).toEqual({ width: 100, height: 100 });
  });
});

describe('images in the token rule', () => {
  it('adds image tokens to one ceil over all text bytes', () => {
    const contents = [{ role: 'user', parts: [{ text: 'abc' }, { inlineData: { mimeType: 'image/png', data: b64(png(1000, 500)) } }, { text: 'de' }] }];
    expect(countRequestTokens(contents)).toBe(Math.ceil(5 / 4) + 258 * 2);
  });

  it('keeps the JSON-bytes rule for other inline data', () => {
    const part = { inlineData: { mimeType: 'application/pdf', data: 'JVBERi0xLjQ=' } };
    expect(countRequestTokens([{ parts: [part] }])).toBe(Math.ceil(utf8Bytes(JSON.stringify(part)) / 4));
  });
});

describe('images over HTTP', () => {
  const FLASH = 'gemini-2.5-flash';
  const KEY = 'sim-key-a1';
  let sim: GoogleSimulator;
  beforeAll(async () => {
    sim = await startGoogleSimulator({ models: { [FLASH]: { rpm: 1000, rpd: 1000 } } });
  });
  afterAll(() => sim.close());

  const withImage = (mimeType: string, data: string): Record<string, unknown> => ({
    contents: [{ role: 'user', parts: [{ text: 'what is this?' }, { inline_data: { mime_type: mimeType, data } }] }],
  });

  it('promptTokenCount and countTokens both count a large image by its tiles', async () => {
    const body = withImage('image/jpeg', b64(jpeg(1600, 900), 2_000_000));
    const expected = Math.ceil('what is this?'.length / 4) + 258 * 3 * 2;
    const r = await generate(sim, FLASH, KEY, body);
    expect(r.status).toBe(200);
    expect(r.json.usageMetadata.promptTokenCount).toBe(expected);
    expect(r.json.usageMetadata.promptTokensDetails).toEqual([
      { modality: 'TEXT', tokenCount: expected - 258 * 6 },
      { modality: 'IMAGE', tokenCount: 258 * 6 },
    ]);
    const counted = await call(sim, 'POST', `/v1beta/models/${FLASH}:countTokens`, { key: KEY, body });
    expect(counted.json).toEqual({ totalTokens: expected });
  });

  it.each([
    ['corrupt', 'image/png', 'bm90IGFuIGltYWdl'],
    ['mislabelled', 'image/webp', b64(png(10, 10))],
  ])('refuses a %s image with Google\'s 400, on generate and countTokens', async (_label, mimeType, data) => {
    const r = await generate(sim, FLASH, KEY, withImage(mimeType, data));
    expect(r.status).toBe(400);
    expect(r.json.error).toEqual({ code: 400, status: 'INVALID_ARGUMENT', message: UNREADABLE_IMAGE_MESSAGE });
    const counted = await call(sim, 'POST', `/v1beta/models/${FLASH}:countTokens`, { key: KEY, body: withImage(mimeType, data) });
    expect(counted.status).toBe(400);
  });
});
