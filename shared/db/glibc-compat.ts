// Makes a shared object built against glibc 2.38 (Debian 13) load on glibc 2.36 (Debian 12), when all
// it needs of 2.38 is C23's names for old functions: gcc 14 compiles strtol and sscanf to
// __isoc23_strtol and __isoc23_sscanf (versioned GLIBC_2.38), which differ from the C99 ones only for
// inputs with a "0b" prefix. Each such reference is renamed to the C99 function (its name is the C23
// name's tail, so the symbol points there) and made unversioned, and the GLIBC_2.38 requirement is marked weak so the loader
// does not insist on it. Anything else that needs 2.38 is refused: the object would not work.
import { readFileSync, writeFileSync } from "node:fs";

/** C23 names and the older functions with the same behaviour for the inputs a PostgreSQL extension parses. */
const C23_NAMES: Record<string, string> = { __isoc23_strtol: "strtol", __isoc23_sscanf: "sscanf" };
// (Each value must be the tail of its key: see below.)
const NEWER_GLIBC = "GLIBC_2.38";

const SHT_DYNSYM = 11;
const SHT_GNU_versym = 0x6fffffff;
const SHT_GNU_verneed = 0x6ffffffe;
const VER_FLG_WEAK = 0x2;
const VER_NDX_GLOBAL = 1;

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

/** Patches the file in place; returns the symbols it renamed. Throws when the object needs more of 2.38. */
export function patchForOlderGlibc(file: string): string[] {
  const data = readFileSync(file);
  if (data.readUInt32BE(0) !== 0x7f454c46 || data[4] !== 2 || data[5] !== 1) {
    throw new Error(`${file}: not a 64-bit little-endian ELF object`);
  }
  const shoff = Number(data.readBigUInt64LE(0x28));
  const shentsize = data.readUInt16LE(0x3a);
  const sections: Section[] = Array.from({ length: data.readUInt16LE(0x3c) }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      type: data.readUInt32LE(at + 4),
      offset: Number(data.readBigUInt64LE(at + 0x18)),
      size: Number(data.readBigUInt64LE(at + 0x20)),
      link: data.readUInt32LE(at + 0x28),
      entsize: Number(data.readBigUInt64LE(at + 0x38)),
    };
  });
  const find = (type: number) => {
    const s = sections.find((x) => x.type === type);
    if (s === undefined) throw new Error(`${file}: no section of type ${type.toString(16)}`);
    return s;
  };
  const dynsym = find(SHT_DYNSYM);
  const dynstr = sections[dynsym.link]!;
  const versym = find(SHT_GNU_versym);
  const name = (off: number) => data.toString("latin1", dynstr.offset + off, data.indexOf(0, dynstr.offset + off));

  // The version index (vna_other) of GLIBC_2.38 among the requirements, made weak.
  const newer = new Set<number>();
  const verneed = find(SHT_GNU_verneed);
  for (let need = verneed.offset, more = true; more;) {
    const count = data.readUInt16LE(need + 2);
    for (let i = 0, aux = need + data.readUInt32LE(need + 8); i < count; i++) {
      if (name(data.readUInt32LE(aux + 8)) === NEWER_GLIBC) {
        data.writeUInt16LE(data.readUInt16LE(aux + 4) | VER_FLG_WEAK, aux + 4);
        newer.add(data.readUInt16LE(aux + 6));
      }
      aux += data.readUInt32LE(aux + 12);
    }
    more = data.readUInt32LE(need + 12) !== 0;
    need += data.readUInt32LE(need + 12);
  }

  const renamed: string[] = [];
  for (let i = 0; i < dynsym.size / dynsym.entsize; i++) {
    const at = dynsym.offset + i * dynsym.entsize;
    const version = data.readUInt16LE(versym.offset + i * 2) & 0x7fff;
    if (!newer.has(version)) continue;
    const symbol = name(data.readUInt32LE(at));
    const older = C23_NAMES[symbol];
    if (older === undefined) throw new Error(`${file}: needs ${symbol}@${NEWER_GLIBC}, which glibc 2.36 does not have`);
    // "strtol" ends "__isoc23_strtol": the symbol's name starts at that tail, and no string is rewritten.
    data.writeUInt32LE(data.readUInt32LE(at) + symbol.length - older.length, at);
    data.writeUInt16LE(VER_NDX_GLOBAL, versym.offset + i * 2);
    renamed.push(symbol);
  }
  writeFileSync(file, data);
  return renamed;
}
