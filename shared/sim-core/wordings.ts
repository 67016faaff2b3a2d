// Providers word one answer in more than one way, and reword it over time. The simulators therefore
// answer each case (a withdrawn model, a spending cap, a rate limit's wait, …) with one of several
// wordings, the same one for the whole run, drawn from a seed: a gateway that decides by one English
// sentence fails on some runs, and the seed of a failing run reproduces it.
//
// The seed comes from GOOGLE_SIM_WORDING_SEED (an unsigned 32-bit integer; the name is historical,
// every simulator reads it), else it is drawn once per process. `npm test` draws it once for the
// whole run, passes it to every process in the environment and prints it, so a failure names the
// seed that reproduces it. Simulators keep their case names apart (the OpenAI one prefixes `openai.`).

/** The seed of this process, as given in GOOGLE_SIM_WORDING_SEED or drawn at random. */
export const WORDING_SEED: number = seedFrom(process.env.GOOGLE_SIM_WORDING_SEED) ?? drawSeed();

/** Parses a seed: an unsigned 32-bit integer, else undefined. */
export function seedFrom(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return n <= 0xffffffff ? n : undefined;
}

export function drawSeed(): number {
  return Math.floor(Math.random() * 0x100000000);
}

/**
 * One of `variants` for `caseName`: the same for a given seed and case, and independent between cases
 * (so one seed does not pick "the first wording" of every case at once).
 */
export function pickWording<T>(caseName: string, variants: readonly T[], seed: number = WORDING_SEED): T {
  if (variants.length === 0) throw new Error(`sim: no wordings for ${caseName}`);
  return variants[fnv1a(`${seed}:${caseName}`) % variants.length]!;
}

/** FNV-1a, 32 bits: a small, stable hash (not for security). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
