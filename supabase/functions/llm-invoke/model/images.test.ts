import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import {
  APP0,
  ascii,
  base64,
  chunk,
  jpeg,
  png,
  PNG_SIGNATURE,
  riff,
  SCAN,
  segment,
  sof0,
  u32le,
  webpVp8,
  webpVp8l,
  webpVp8x,
} from "../../../../tests/support/image-bytes.ts";
import { refusal } from "../../../../tests/support/refusal.ts";
import {
  IMAGE_LIMITS,
  IMAGE_OVERHEAD_TOKENS,
  imageTokens,
  inspectInlineImage,
  SUPPORTED_IMAGE_TYPES,
} from "./images.ts";

const WHERE = "contents[0].parts[1].inlineData";

function inspect(mimeType: unknown, data: unknown) {
  return inspectInlineImage({ mimeType, data }, WHERE);
}

// ---- dimensions --------------------------------------------------------------------------------------

describe("inspectInlineImage reads the dimensions", () => {
  const cases: Array<[string, string, number[], number, number]> = [
    ["PNG", "image/png", png(1920, 1080), 1920, 1080],
    ["JPEG", "image/jpeg", jpeg(4032, 3024), 4032, 3024],
    ["WebP VP8", "image/webp", webpVp8(800, 600), 800, 600],
    ["WebP VP8L", "image/webp", webpVp8l(16_384, 3), 16_384, 3],
    ["WebP VP8X", "image/webp", webpVp8x(2000, 1500), 2000, 1500],
  ];
  for (const [name, mimeType, bytes, width, height] of cases) {
    it(`of a ${name}`, () => {
      expect(inspect(mimeType, base64(bytes))).toEqual({
        mimeType,
        width,
        height,
        bytes: bytes.length,
        tokens: imageTokens(width, height),
      });
    });
  }

  it("of a JPEG whose frame header follows fill bytes, standalone markers, a large APP1, DHT and DAC", () => {
    const app1 = segment(0xe1, [...ascii("Exif"), 0, 0, ...new Array(60_000).fill(0xab)]);
    const dht = segment(0xc4, [0x00, ...new Array(16).fill(0), 0x2a]); // C4 is no frame header, nor DAC's CC
    const dac = segment(0xcc, [0x00, 0x10]);
    const bytes = jpeg(640, 480, [0xff, 0xff, 0xff, 0xd0, 0xff, 0x01, ...app1, ...dht, ...dac, 0xff]);
    expect(inspect("image/jpeg", base64(bytes))).toMatchObject({ width: 640, height: 480 });
  });

  it("of unpadded and of URL-safe base64, as Google accepts both", () => {
    const bytes = [...png(300, 200), 0xfb, 0xff, 0xbf, 0xfb, 0xef]; // trailing bytes that encode to + and /
    const standard = base64(bytes);
    expect(standard).toMatch(/[+/]/);
    expect(standard).toMatch(/=$/);
    const expected = { width: 300, height: 200, bytes: bytes.length };
    expect(inspect("image/png", standard.replace(/=+$/, ""))).toMatchObject(expected);
    expect(inspect("image/png", standard.replaceAll("+", "-").replaceAll("/", "_"))).toMatchObject(expected);
  });

  it("accepts an image of exactly maxBytes decoded, checking all of its base64", () => {
    const header = png(4000, 3000);
    const data = btoa(String.fromCharCode(...header) + "\0".repeat(IMAGE_LIMITS.maxBytes - header.length));
    expect(inspect("image/png", data)).toMatchObject({ width: 4000, height: 3000, bytes: IMAGE_LIMITS.maxBytes });
    // the same image with one bad character near its end: the header is fine, the data is not
    const bad = data.slice(0, -8) + "*" + data.slice(-7);
    const e = refusal(() => inspect("image/png", bad));
    expect(e.code).toBe("invalid_image");
    expect(e.message).toContain(`at ${data.length - 8}`);
  });
});

// ---- too large ---------------------------------------------------------------------------------------

describe("inspectInlineImage refuses images too large (413 image_too_large)", () => {
  it("a PNG bomb: IHDR declares 100000×100000 in a file under 100 bytes", () => {
    const bytes = png(100_000, 100_000);
    expect(bytes.length).toBeLessThan(100);
    const e = refusal(() => inspect("image/png", base64(bytes)));
    expect(e.code).toBe("image_too_large");
    expect(e.status).toBe(413);
    expect(e.details).toEqual({ field: WHERE, width: 100_000, height: 100_000, max_side: IMAGE_LIMITS.maxSide });
  });

  it("a JPEG bomb: SOF0 declares 65500×65500", () => {
    const e = refusal(() => inspect("image/jpeg", base64(jpeg(65_500, 65_500))));
    expect(e.code).toBe("image_too_large");
    expect(e.details).toMatchObject({ field: WHERE, max_side: IMAGE_LIMITS.maxSide });
  });

  it("sides within maxSide whose product is over maxPixels (PNG 16000×16000, WebP VP8X 16384×16384)", () => {
    for (const [mimeType, bytes] of [["image/png", png(16_000, 16_000)], ["image/webp", webpVp8x(16_384, 16_384)]]) {
      const e = refusal(() => inspect(mimeType, base64(bytes as number[])));
      expect(e.code).toBe("image_too_large");
      expect(e.details).toMatchObject({ field: WHERE, max_pixels: IMAGE_LIMITS.maxPixels });
    }
    // at the limit it passes
    expect(inspect("image/png", base64(png(8000, 6000)))).toMatchObject({ width: 8000, height: 6000 });
    expect(inspect("image/png", base64(png(16_384, 1)))).toMatchObject({ width: 16_384 });
  });

  it("over maxBytes, decided from the base64 length alone", () => {
    // Not one character of this is base64: a refusal as too large shows none of it was read.
    const data = "!".repeat(Math.ceil(((IMAGE_LIMITS.maxBytes + 1) * 4) / 3));
    const e = refusal(() => inspect("image/png", data));
    expect(e.code).toBe("image_too_large");
    expect(e.details).toEqual({ field: WHERE, bytes: IMAGE_LIMITS.maxBytes + 1, max_bytes: IMAGE_LIMITS.maxBytes });
  });
});

// ---- invalid -----------------------------------------------------------------------------------------

describe("inspectInlineImage refuses data that is not the declared image (400 invalid_image)", () => {
  const invalid = (mimeType: string, data: unknown): GatewayError => {
    const e = refusal(() => inspect(mimeType, data));
    expect(e.code).toBe("invalid_image");
    expect(e.status).toBe(400);
    expect(e.details).toMatchObject({ field: WHERE });
    return e;
  };

  it("random bytes declared image/png", () => {
    let seed = 12345;
    const random = Array.from({ length: 512 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >>> 23);
    random[0] = 0x42; // not a PNG, JPEG or WebP signature
    expect(invalid("image/png", base64(random)).details).toMatchObject({ detected: null });
  });

  it("JPEG bytes declared image/png (type mismatch), and PNG bytes declared image/webp", () => {
    expect(invalid("image/png", base64(jpeg(10, 10))).details).toMatchObject({
      mime_type: "image/png",
      detected: "image/jpeg",
    });
    expect(invalid("image/webp", base64(png(10, 10))).details).toMatchObject({ detected: "image/png" });
  });

  it("a JPEG cut short before its frame header, or whose segment length leaves the data", () => {
    const whole = jpeg(640, 480);
    expect(invalid("image/jpeg", base64(whole.slice(0, 40))).message).toContain("cut short");
    const overlong = [0xff, 0xd8, 0xff, 0xe0, 0xff, 0xf0, ...new Array(100).fill(0)];
    expect(invalid("image/jpeg", base64(overlong)).message).toContain("cut short");
    const sofCut = whole.slice(0, whole.indexOf(0xc0) + 6); // SOF0's length and precision, no size
    invalid("image/jpeg", base64(sofCut));
  });

  it("a JPEG whose scan or end comes before any frame header, or whose segments are not markers", () => {
    invalid("image/jpeg", base64([0xff, 0xd8, ...APP0, ...SCAN, 0xff, 0xd9]));
    invalid("image/jpeg", base64([0xff, 0xd8, ...APP0, 0xff, 0xd9]));
    invalid("image/jpeg", base64([0xff, 0xd8, ...APP0, 0x12, 0x34, ...sof0(10, 10)]));
    invalid("image/jpeg", base64([0xff, 0xd8, 0xff, 0xe0, 0, 1, ...sof0(10, 10)])); // length below 2
  });

  it("a PNG cut short, or whose first chunk is not IHDR", () => {
    invalid("image/png", base64(png(10, 10).slice(0, 24)));
    invalid("image/png", base64([...PNG_SIGNATURE, ...chunk("tEXt", new Array(13).fill(65)), ...png(10, 10).slice(8)]));
  });

  it("zero width or height", () => {
    expect(invalid("image/png", base64(png(0, 10))).details).toMatchObject({ width: 0, height: 10 });
    invalid("image/jpeg", base64(jpeg(10, 0)));
    invalid("image/webp", base64(webpVp8(0, 10)));
  });

  it("WebP without a VP8 start code, a non-key frame, an unknown VP8L version or an unknown first chunk", () => {
    const vp8 = webpVp8(10, 10);
    invalid("image/webp", base64(vp8.map((b, i) => (i === 23 ? 0 : b))));
    invalid("image/webp", base64(vp8.map((b, i) => (i === 20 ? b | 1 : b))));
    invalid("image/webp", base64(riff("VP8L", [0x2f, ...u32le(0xe000_0000), 0])));
    invalid("image/webp", base64(riff("ALPH", new Array(20).fill(0))));
    invalid("image/webp", base64(webpVp8x(10, 10).slice(0, 26)));
  });

  it("data that is not base64: bad characters, bad padding, a data: URL, mixed alphabets, not a string", () => {
    const good = base64(png(10, 10));
    expect(invalid("image/png", good.slice(0, 20) + "$" + good.slice(21)).message).toContain("at 20");
    invalid("image/png", good.slice(0, 20) + " " + good.slice(21));
    invalid("image/png", good + "=");
    invalid("image/png", "QUJD=");
    invalid("image/png", "QQ=A");
    invalid("image/png", good.slice(0, 5)); // a length no base64 text has
    expect(invalid("image/png", `data:image/png;base64,${good}`).message).toContain("data: URL");
    invalid("image/png", "+" + good.slice(1, -2) + "_" + good.slice(-1));
    invalid("image/png", 12345);
    invalid("image/png", null);
  });

  it("empty data", () => {
    expect(invalid("image/png", "").message).toContain("empty");
    invalid("image/png", "==");
  });
});

describe("inspectInlineImage refuses other types (400 unsupported_feature)", () => {
  it("image/gif and a mimeType that is not a string, naming the supported types", () => {
    for (const mimeType of ["image/gif", "application/pdf", "IMAGE/PNG", undefined, 7]) {
      const e = refusal(() => inspect(mimeType, base64(png(10, 10))));
      expect(e.code).toBe("unsupported_feature");
      expect(e.message).toContain("image/png, image/jpeg, image/webp");
      expect(e.details).toMatchObject({ field: WHERE, supported: [...SUPPORTED_IMAGE_TYPES] });
    }
  });
});

// ---- linear cost -------------------------------------------------------------------------------------

describe("the cost of inspecting stays linear in the data", () => {
  it("images.ts applies no regular expression", () => {
    const source = readFileSync(new URL("./images.ts", import.meta.url), "utf8");
    for (const call of ["RegExp", ".match(", ".matchAll(", ".test(", ".replace(", ".search(", ".split("]) {
      expect(source).not.toContain(call);
    }
  });

  it("a maxBytes JPEG of fill bytes is walked to its end once and refused", () => {
    const data = btoa("\xff\xd8" + "\xff".repeat(IMAGE_LIMITS.maxBytes - 2));
    expect(refusal(() => inspect("image/jpeg", data)).message).toContain("cut short");
  });

  it("a maxBytes JPEG of empty segments is walked to its end once and refused", () => {
    const data = btoa("\xff\xd8" + "\xff\xfe\x00\x02".repeat(Math.floor((IMAGE_LIMITS.maxBytes - 2) / 4)));
    expect(refusal(() => inspect("image/jpeg", data)).code).toBe("invalid_image");
  });
});

// ---- token estimate ----------------------------------------------------------------------------------

/** Google's documented rule (Gemini 2.x), the reference the estimate must never fall below. */
function googleImageTokens(width: number, height: number): number {
  if (width <= 384 && height <= 384) return 258;
  return Math.ceil(width / 768) * Math.ceil(height / 768) * 258;
}

describe("imageTokens", () => {
  it("is never below Google's rule, across sizes 1..20000 and the tile edges", () => {
    const sides = [1, 2, 100, 383, 384, 385, 767, 768, 769, 1535, 1536, 1537, 16_384, 19_999, 20_000];
    for (let s = 1; s <= 20_000; s += 97) sides.push(s);
    let pairs = 0;
    for (const w of sides) {
      for (const h of sides) {
        const estimate = imageTokens(w, h);
        if (estimate < googleImageTokens(w, h)) expect.fail(`${w}×${h}: ${estimate} < ${googleImageTokens(w, h)}`);
        // and not far above it: Google's count plus the part's markers
        expect(estimate).toBe(googleImageTokens(w, h) + IMAGE_OVERHEAD_TOKENS);
        pairs++;
      }
    }
    expect(pairs).toBeGreaterThan(40_000);
  });

  it("counts 258 per started 768×768 tile plus the overhead", () => {
    expect(IMAGE_OVERHEAD_TOKENS).toBe(8);
    expect(imageTokens(1, 1)).toBe(266);
    expect(imageTokens(384, 384)).toBe(266);
    expect(imageTokens(385, 384)).toBe(266);
    expect(imageTokens(768, 768)).toBe(266);
    expect(imageTokens(769, 768)).toBe(2 * 258 + 8);
    expect(imageTokens(1920, 1080)).toBe(6 * 258 + 8);
    expect(imageTokens(16_384, 16_384)).toBe(22 * 22 * 258 + 8);
  });
});
