// Image input: pixel dimensions read from the header of a base64 inlineData image, and Gemini's
// documented image tokenisation. Only the bytes a header needs are decoded, so a 20 MB image costs
// a few hundred bytes of decoding (JPEG: up to its first frame header).

/** MIME types counted by their pixels; any other inlineData keeps the JSON-bytes rule. */
export const COUNTED_IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;

/** Google's wording for an image it cannot decode. */
export const UNREADABLE_IMAGE_MESSAGE =
  'Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting';

export interface ImageSize {
  width: number;
  height: number;
}

/**
 * Gemini's rule: an image with both sides ≤ 384 px is 258 tokens; a larger one is cut into
 * 768 × 768 tiles of 258 tokens each.
 */
export function imageTokensByGoogleRule(width: number, height: number): number {
  if (width <= 384 && height <= 384) return 258;
  return 258 * Math.ceil(width / 768) * Math.ceil(height / 768);
}

/** Decodes a base64 (or base64url) string lazily: a prefix at a time, doubling as reads go further. */
class Base64Prefix {
  private bytes = Buffer.alloc(0);
  private decodedChars = 0;

  constructor(private readonly data: string) {}

  /** The byte at `i`, or undefined past the end of the data. */
  at(i: number): number | undefined {
    while (i >= this.bytes.length && this.decodedChars < this.data.length) this.grow(i + 1);
    return this.bytes[i];
  }

  /** Decodes at least `need` bytes (4 characters per 3 bytes), at least doubling what we have. */
  private grow(need: number): void {
    const chars = Math.min(this.data.length, Math.max(64, this.decodedChars * 2, Math.ceil(need / 3) * 4));
    this.bytes = Buffer.from(this.data.slice(0, chars), 'base64');
    this.decodedChars = chars;
  }

  u8(i: number): number {
    const b = this.at(i);
    if (b === undefined) throw new UnreadableImage();
    return b;
  }

  u16be(i: number): number {
    return (this.u8(i) << 8) | this.u8(i + 1);
  }

  u16le(i: number): number {
    return this.u8(i) | (this.u8(i + 1) << 8);
  }

  u24le(i: number): number {
    return this.u8(i) | (this.u8(i + 1) << 8) | (this.u8(i + 2) << 16);
  }

  u32be(i: number): number {
    return this.u16be(i) * 0x10000 + this.u16be(i + 2);
  }

  ascii(i: number, length: number): string {
    let out = '';
    for (let k = 0; k < length; k++) out += String.fromCharCode(this.u8(i + k));
    return out;
  }
}

class UnreadableImage extends Error {}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function pngSize(b: Base64Prefix): ImageSize {
  PNG_SIGNATURE.forEach((v, i) => {
    if (b.u8(i) !== v) throw new UnreadableImage();
  });
  if (b.ascii(12, 4) !== 'IHDR') throw new UnreadableImage();
  return { width: b.u32be(16), height: b.u32be(20) };
}

/** Markers that stand alone, without a length: TEM, RST0..RST7, SOI. */
function standalone(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
}

/** SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
function startOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function jpegSize(b: Base64Prefix): ImageSize {
  if (b.u8(0) !== 0xff || b.u8(1) !== 0xd8) throw new UnreadableImage();
  let i = 2;
  for (;;) {
    if (b.u8(i) !== 0xff) throw new UnreadableImage();
    let marker = b.u8(i + 1);
    while (marker === 0xff) marker = b.u8(++i + 1); // fill bytes before a marker
    i += 2;
    if (standalone(marker)) continue;
    // Start of scan or end of image before any frame header: no size to read.
    if (marker === 0xda || marker === 0xd9) throw new UnreadableImage();
    const length = b.u16be(i);
    if (length < 2) throw new UnreadableImage();
    if (startOfFrame(marker)) return { height: b.u16be(i + 3), width: b.u16be(i + 5) };
    i += length;
  }
}

function webpSize(b: Base64Prefix): ImageSize {
  if (b.ascii(0, 4) !== 'RIFF' || b.ascii(8, 4) !== 'WEBP') throw new UnreadableImage();
  switch (b.ascii(12, 4)) {
    case 'VP8 ': // lossy: a key frame's start code, then 14-bit sizes
      if (b.u8(23) !== 0x9d || b.u8(24) !== 0x01 || b.u8(25) !== 0x2a) throw new UnreadableImage();
      return { width: b.u16le(26) & 0x3fff, height: b.u16le(28) & 0x3fff };
    case 'VP8L': {
      // lossless: signature 0x2f, then width-1 and height-1 as 14-bit fields
      if (b.u8(20) !== 0x2f) throw new UnreadableImage();
      const bits = b.u8(21) | (b.u8(22) << 8) | (b.u8(23) << 16) | (b.u8(24) << 24);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    case 'VP8X': // extended: 24-bit canvas width-1 and height-1
      return { width: b.u24le(24) + 1, height: b.u24le(27) + 1 };
    default:
      throw new UnreadableImage();
  }
}

const READERS: Record<(typeof COUNTED_IMAGE_TYPES)[number], (b: Base64Prefix) => ImageSize> = {
  'image/png': pngSize,
  'image/jpeg': jpegSize,
  'image/webp': webpSize,
};

export function isCountedImageType(mimeType: string): mimeType is (typeof COUNTED_IMAGE_TYPES)[number] {
  return (COUNTED_IMAGE_TYPES as readonly string[]).includes(mimeType);
}

/**
 * Width and height from the header of a base64 image of the given type, or undefined when the
 * header cannot be read (corrupt, truncated, or not the declared type).
 */
export function readImageSize(mimeType: string, base64: string): ImageSize | undefined {
  const type = mimeType.toLowerCase();
  if (!isCountedImageType(type)) return undefined;
  try {
    const size = READERS[type](new Base64Prefix(base64));
    return size.width > 0 && size.height > 0 ? size : undefined;
  } catch (e) {
    if (e instanceof UnreadableImage) return undefined;
    throw e;
  }
}

/** An inlineData part's `{mimeType, data}`, in camelCase or snake_case; undefined for other parts. */
export function inlineImage(part: unknown): { mimeType: string; data: string } | undefined {
  if (part === null || typeof part !== 'object') return undefined;
  const p = part as Record<string, unknown>;
  const inline = p.inlineData ?? p.inline_data;
  if (inline === null || typeof inline !== 'object') return undefined;
  const i = inline as Record<string, unknown>;
  const mimeType = i.mimeType ?? i.mime_type;
  if (typeof mimeType !== 'string' || !isCountedImageType(mimeType.toLowerCase())) return undefined;
  return { mimeType, data: typeof i.data === 'string' ? i.data : '' };
}
