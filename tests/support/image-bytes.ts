// Image bytes for tests: the headers of real PNG, JPEG and WebP files (no pixels), so the gateway's
// image checks, the simulator's counting and the clients can be tried with exact dimensions, bombs
// (huge declared dimensions in a tiny file) included.
export const ascii = (text: string) => [...text].map((ch) => ch.charCodeAt(0));
export const u16be = (n: number) => [(n >>> 8) & 0xff, n & 0xff];
const u32be = (n: number) => [...u16be(Math.floor(n / 0x10000)), ...u16be(n & 0xffff)];
const u16le = (n: number) => [n & 0xff, (n >>> 8) & 0xff];
const u24le = (n: number) => [...u16le(n & 0xffff), (n >>> 16) & 0xff];
export const u32le = (n: number) => [...u16le(n & 0xffff), ...u16le(Math.floor(n / 0x10000))];
export function base64(bytes: readonly number[]): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const chunk = (type: string, data: number[]) => [...u32be(data.length), ...ascii(type), ...data, 0, 0, 0, 0]; // CRC unchecked

/** A PNG of IHDR (8-bit RGBA) and IEND: the header of a real file, no pixels. */
export function png(width: number, height: number): number[] {
  return [...PNG_SIGNATURE, ...chunk("IHDR", [...u32be(width), ...u32be(height), 8, 6, 0, 0, 0]), ...chunk("IEND", [])];
}

export const segment = (marker: number, body: number[]) => [0xff, marker, ...u16be(body.length + 2), ...body];
export const APP0 = segment(0xe0, [...ascii("JFIF"), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
export const DQT = segment(0xdb, [0, ...new Array(64).fill(1)]);
export const sof0 = (width: number, height: number) =>
  segment(0xc0, [8, ...u16be(height), ...u16be(width), 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);

export const SCAN = [...segment(0xda, [1, 1, 0, 0, 0x3f, 0]), 0];

/** A baseline JPEG: SOI, APP0 (JFIF), DQT, SOF0, then the start of a scan. */
export function jpeg(width: number, height: number, before: number[] = []): number[] {
  return [0xff, 0xd8, ...APP0, ...DQT, ...before, ...sof0(width, height), ...SCAN, 0xff, 0xd9];
}

export function riff(fourcc: string, payload: number[]): number[] {
  const body = [...ascii("WEBP"), ...ascii(fourcc), ...u32le(payload.length), ...payload];
  return [...ascii("RIFF"), ...u32le(body.length), ...body];
}
/** Lossy: key-frame tag, start code 9D 01 2A, 14-bit width and height. */
export const webpVp8 = (width: number, height: number) =>
  riff("VP8 ", [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, ...u16le(width), ...u16le(height), 0, 0]);
/** Lossless: signature 2F, then width-1 and height-1 in 14 bits each, alpha bit, version 0. */
export const webpVp8l = (width: number, height: number) =>
  riff("VP8L", [0x2f, ...u32le(((width - 1) | ((height - 1) << 14)) >>> 0), 0]);
/** Extended: flags, 3 reserved bytes, canvas width-1 and height-1 in 24 bits each. */
export const webpVp8x = (width: number, height: number) =>
  riff("VP8X", [0x10, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1)]);

