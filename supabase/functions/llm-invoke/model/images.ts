// Inline images (a request's media parts): check one before it is admitted, and estimate its input tokens.
//
// Only the header is read: the dimensions decide both the token estimate and whether the image is
// refused. Pixels are never decoded. The base64 text is checked whole in one linear pass (a bad
// character anywhere is the caller's mistake, better told now than by the provider after it has cost a
// request), and only the few bytes the header needs are decoded, one by one, straight from the text.
// No regular expression touches the data, so the cost stays linear in its length.
import { GatewayError } from "../../_shared/errors.ts";
import { sanitize } from "../../_shared/sanitize.ts";

export const SUPPORTED_IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"] as const;

// Why these caps:
// - maxBytes: Google refuses an inline request over 20 MB in all. 7 MiB decoded is about 9.8 MB of
//   base64, which leaves room for the text of the request and for a second image; a larger image
//   belongs in the File API, which the gateway does not offer.
// - maxSide / maxPixels: a "decompression bomb" declares huge dimensions in a tiny file; whoever
//   decodes it allocates width × height × 4 bytes (100 000 × 100 000 would be 40 GB). The gateway
//   never decodes pixels, but the provider does, and such an image would also inflate the token estimate
//   by thousands of tiles; refused here, it costs no quota. 48 MP covers every camera photo we expect.
export const IMAGE_LIMITS = {
  maxBytes: 7 * 1024 * 1024, // decoded
  maxSide: 16_384,
  maxPixels: 48_000_000,
} as const;

/** Tokens Google's tile rule (258 per 768 × 768 tile) does not show: the part's markers in the turn. */
export const IMAGE_OVERHEAD_TOKENS = 8;
const TOKENS_PER_TILE = 258;
const TILE_SIDE = 768;

export interface ImageInfo {
  mimeType: string;
  width: number;
  height: number;
  /** Decoded size in bytes. */
  bytes: number;
  /** The gateway's estimate of the image's input tokens (imageTokens). */
  tokens: number;
}

type ImageType = typeof SUPPORTED_IMAGE_TYPES[number];

/**
 * Conservative input tokens of one image of width × height pixels.
 *
 * Google's documented rule (Gemini 2.x): 258 tokens when both sides are ≤ 384 px, otherwise the image
 * is cut into 768 × 768 tiles of 258 tokens each. Tiling every image, small ones included, gives the
 * same 258 for the small case (one tile) and the same count otherwise, so the estimate is never below
 * Google's rule; the overhead covers the part's markers.
 */
export function imageTokens(width: number, height: number): number {
  const tiles = Math.max(1, Math.ceil(width / TILE_SIDE) * Math.ceil(height / TILE_SIDE));
  return TOKENS_PER_TILE * tiles + IMAGE_OVERHEAD_TOKENS;
}

/**
 * Checks one inline image and reads its dimensions. `where` is the part's JSON path in the caller's
 * body, in its route's words, used in messages; `field` is `details.field` (by default the same).
 */
export function inspectInlineImage(
  part: { mimeType: unknown; data: unknown },
  where: string,
  field: string = where,
): ImageInfo {
  const at: At = { words: where, field };
  const mimeType = part.mimeType;
  if (typeof mimeType !== "string" || !isSupportedType(mimeType)) {
    throw new GatewayError(
      "unsupported_feature",
      `${where}.mimeType must be one of ${SUPPORTED_IMAGE_TYPES.join(", ")}` +
        (typeof mimeType === "string" ? ` (got ${sanitize(mimeType, { maxLength: 100 })}).` : "."),
      { details: { field, feature: "mimeType", supported: [...SUPPORTED_IMAGE_TYPES] } },
    );
  }
  const data = part.data;
  if (typeof data !== "string") throw invalidImage(at, `${where}.data must be a base64 string.`);

  // Decided from the length alone, before reading the text: an oversized image costs no decoding.
  const padding = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0;
  const bytes = Math.floor((data.length - padding) * 3 / 4);
  if (bytes > IMAGE_LIMITS.maxBytes) {
    throw tooLarge(at, `${where} is ${bytes} bytes; at most ${IMAGE_LIMITS.maxBytes} are accepted.`, {
      bytes,
      max_bytes: IMAGE_LIMITS.maxBytes,
    });
  }
  if (data.length === 0) throw invalidImage(at, `${where}.data is empty.`);

  const reader = base64Reader(data, at);
  const detected = detectType(reader);
  if (detected !== mimeType) {
    throw invalidImage(
      at,
      `${where}.data is not ${article(mimeType)} image` + (detected === null ? "." : ` (it looks like ${detected}).`),
      { mime_type: mimeType, detected },
    );
  }
  const { width, height } = readDimensions(mimeType, reader, at);
  if (width === 0 || height === 0) {
    throw invalidImage(at, `${where} declares a zero dimension (${width}×${height}).`, { width, height });
  }
  if (width > IMAGE_LIMITS.maxSide || height > IMAGE_LIMITS.maxSide) {
    throw tooLarge(
      at,
      `${where} is ${width}×${height} px; each side may be at most ${IMAGE_LIMITS.maxSide} px.`,
      { width, height, max_side: IMAGE_LIMITS.maxSide },
    );
  }
  if (width * height > IMAGE_LIMITS.maxPixels) {
    throw tooLarge(
      at,
      `${where} is ${width}×${height} px (${width * height} pixels); at most ${IMAGE_LIMITS.maxPixels} are accepted.`,
      { width, height, max_pixels: IMAGE_LIMITS.maxPixels },
    );
  }
  return { mimeType, width, height, bytes: reader.length, tokens: imageTokens(width, height) };
}

function isSupportedType(mimeType: string): mimeType is ImageType {
  return (SUPPORTED_IMAGE_TYPES as readonly string[]).includes(mimeType);
}

function article(mimeType: ImageType): string {
  return mimeType === "image/png" ? "a PNG" : mimeType === "image/jpeg" ? "a JPEG" : "a WebP";
}

/** Where an image is: in the caller's words (messages) and as details.field. */
interface At {
  words: string;
  field: string;
}

function invalidImage(at: At, message: string, details: Record<string, unknown> = {}): GatewayError {
  return new GatewayError("invalid_image", message, { details: { field: at.field, ...details } });
}

function tooLarge(at: At, message: string, details: Record<string, unknown>): GatewayError {
  return new GatewayError("image_too_large", message, { details: { field: at.field, ...details } });
}

// ---- base64 ----------------------------------------------------------------------------------------

// Google's JSON accepts standard and URL-safe base64, padded or not; one alphabet per string.
const STANDARD = 1;
const URL_SAFE = 2;
const INVALID = 255;
const SEXTET = new Uint8Array(128).fill(INVALID);
const ALPHABET_OF = new Uint8Array(128); // 0: either alphabet, else STANDARD or URL_SAFE
{
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (let i = 0; i < letters.length; i++) SEXTET[letters.charCodeAt(i)] = i;
  SEXTET[43] = 62; // +
  SEXTET[47] = 63; // /
  SEXTET[45] = 62; // -
  SEXTET[95] = 63; // _
  ALPHABET_OF[43] = ALPHABET_OF[47] = STANDARD;
  ALPHABET_OF[45] = ALPHABET_OF[95] = URL_SAFE;
}

interface ByteReader {
  /** Decoded length in bytes. */
  readonly length: number;
  /** The byte at `offset`; an offset past the end means the header is cut short. */
  at(offset: number): number;
}

/** Validates all of `data` in one pass, then decodes single bytes on demand. */
function base64Reader(data: string, at: At): ByteReader {
  const where = at.words;
  const notBase64 = (why: string) => invalidImage(at, `${where}.data is not base64: ${why}.`);
  let end = data.length;
  while (end > 0 && end > data.length - 2 && data.charCodeAt(end - 1) === 61 /* = */) end--;
  if (end < data.length && data.length % 4 !== 0) throw notBase64("padding in the wrong place");
  if (end % 4 === 1) throw notBase64("its length is not possible for base64");
  let alphabet = 0;
  for (let i = 0; i < end; i++) {
    const c = data.charCodeAt(i);
    if (c >= 128 || SEXTET[c] === INVALID) {
      if (data.startsWith("data:")) throw notBase64("send the base64 alone, without a data: URL prefix");
      throw notBase64(c === 61 ? "padding in the wrong place" : `unexpected character at ${i}`);
    }
    const a = ALPHABET_OF[c];
    if (a !== 0) {
      if (alphabet !== 0 && a !== alphabet) throw notBase64("it mixes standard and URL-safe characters");
      alphabet = a;
    }
  }
  if (end === 0) throw invalidImage(at, `${where}.data is empty.`);
  const length = Math.floor(end * 3 / 4);
  const sextet = (i: number) => (i < end ? SEXTET[data.charCodeAt(i)] : 0);
  return {
    length,
    at(offset: number): number {
      if (offset >= length) throw invalidImage(at, `${where}: the image header is cut short.`);
      const q = (offset / 3 | 0) * 4;
      switch (offset % 3) {
        case 0:
          return ((sextet(q) << 2) | (sextet(q + 1) >> 4)) & 0xff;
        case 1:
          return ((sextet(q + 1) << 4) | (sextet(q + 2) >> 2)) & 0xff;
        default:
          return ((sextet(q + 2) << 6) | sextet(q + 3)) & 0xff;
      }
    },
  };
}

// ---- headers ---------------------------------------------------------------------------------------

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function matches(r: ByteReader, offset: number, expected: readonly number[]): boolean {
  if (offset + expected.length > r.length) return false;
  for (let i = 0; i < expected.length; i++) if (r.at(offset + i) !== expected[i]) return false;
  return true;
}

const ascii = (text: string) => [...text].map((ch) => ch.charCodeAt(0));
const RIFF = ascii("RIFF");
const WEBP = ascii("WEBP");

/** The type the bytes' signature says, whatever was declared. */
function detectType(r: ByteReader): ImageType | null {
  if (matches(r, 0, PNG_SIGNATURE)) return "image/png";
  if (matches(r, 0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (matches(r, 0, RIFF) && matches(r, 8, WEBP)) return "image/webp";
  return null;
}

const u16be = (r: ByteReader, o: number) => r.at(o) * 0x100 + r.at(o + 1);
const u32be = (r: ByteReader, o: number) => u16be(r, o) * 0x10000 + u16be(r, o + 2);
const u16le = (r: ByteReader, o: number) => r.at(o) + r.at(o + 1) * 0x100;
const u24le = (r: ByteReader, o: number) => u16le(r, o) + r.at(o + 2) * 0x10000;
const u32le = (r: ByteReader, o: number) => u16le(r, o) + u16le(r, o + 2) * 0x10000;

interface Dimensions {
  width: number;
  height: number;
}

type Fail = (why: string) => never;

function readDimensions(mimeType: ImageType, r: ByteReader, at: At): Dimensions {
  const where = at.words;
  const fail: Fail = (why) => {
    throw invalidImage(at, `${where}: the ${article(mimeType).slice(2)} header is unreadable: ${why}.`);
  };
  if (mimeType === "image/png") return pngDimensions(r, fail);
  if (mimeType === "image/jpeg") return jpegDimensions(r, fail);
  return webpDimensions(r, fail);
}

// PNG: the 8-byte signature, then IHDR, which must be the first chunk: length 13, "IHDR", then width
// and height as big-endian 32-bit integers at offsets 16 and 20.
const IHDR = ascii("IHDR");
function pngDimensions(r: ByteReader, fail: Fail): Dimensions {
  if (u32be(r, 8) !== 13 || !matches(r, 12, IHDR)) fail("IHDR is not the first chunk");
  r.at(8 + 8 + 13 + 4 - 1); // the whole IHDR chunk, CRC included, must be there
  return { width: u32be(r, 16), height: u32be(r, 20) };
}

// JPEG: SOI (FF D8), then marker segments, each FF xx and a 16-bit big-endian length that counts
// itself, up to the first frame header SOFn (C0–CF except DHT C4, JPG C8, DAC CC): precision at +4,
// height at +5, width at +7 from the marker's FF. Each step moves forward by at least 2 bytes, so the
// walk is linear, and reading past the end stops it.
function jpegDimensions(r: ByteReader, fail: Fail): Dimensions {
  let pos = 2;
  for (;;) {
    if (r.at(pos) !== 0xff) fail(`no marker at byte ${pos}`);
    while (r.at(pos) === 0xff) pos++; // fill bytes before a marker are allowed
    const marker = r.at(pos);
    const segment = pos + 1; // the length field
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { // standalone: no length
      pos = segment;
      continue;
    }
    if (marker === 0x00 || marker === 0xd8 || marker === 0xd9 || marker === 0xda) {
      fail(`marker ${hex(marker)} before the frame header`);
    }
    const length = u16be(r, segment);
    if (length < 2) fail(`segment ${hex(marker)} has length ${length}`);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 8) fail(`frame header of length ${length}`);
      r.at(segment + length - 1); // the whole frame header must be there
      return { height: u16be(r, segment + 3), width: u16be(r, segment + 5) };
    }
    pos = segment + length;
  }
}

const hex = (byte: number) => `0x${byte.toString(16).toUpperCase().padStart(2, "0")}`;

// WebP: "RIFF" size "WEBP", then the first chunk's FourCC at 12, its size at 16, its payload at 20.
//   VP8  (lossy): 3-byte frame tag (bit 0 clear on a key frame), start code 9D 01 2A, then 14-bit
//        width and height, little-endian (the top 2 bits are scaling).
//   VP8L (lossless): signature 2F, then 32 bits: width-1 (14), height-1 (14), alpha (1), version (3, 0).
//   VP8X (extended): flags and 3 reserved bytes, then canvas width-1 and height-1, 24 bits each.
const VP8 = ascii("VP8 ");
const VP8L = ascii("VP8L");
const VP8X = ascii("VP8X");
function webpDimensions(r: ByteReader, fail: Fail): Dimensions {
  if (matches(r, 12, VP8)) {
    if ((r.at(20) & 1) !== 0) fail("the VP8 frame is not a key frame");
    if (!matches(r, 23, [0x9d, 0x01, 0x2a])) fail("no VP8 start code");
    return { width: u16le(r, 26) & 0x3fff, height: u16le(r, 28) & 0x3fff };
  }
  if (matches(r, 12, VP8L)) {
    if (r.at(20) !== 0x2f) fail("no VP8L signature");
    const bits = u32le(r, 21);
    if (bits >>> 29 !== 0) fail("unknown VP8L version");
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (matches(r, 12, VP8X)) return { width: u24le(r, 24) + 1, height: u24le(r, 27) + 1 };
  return fail("the first chunk is none of VP8, VP8L, VP8X");
}

/** The estimated tokens of a request's inline images, on top of its text's (a generation's estimate adds them: attempt/generation.ts). */
export function imageTokensOf(images: readonly ImageInfo[]): number {
  return images.reduce((sum, image) => sum + image.tokens, 0);
}
