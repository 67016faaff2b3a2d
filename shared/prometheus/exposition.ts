// Reading Prometheus' text exposition format (version 0.0.4) back into samples, for the tests and the
// benchmark that check what /metrics says. Only what the format allows: `# HELP`/`# TYPE` lines, and
// `name{label="value",…} number` samples with \\, \" and \n escapes in label values.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Family name -> its # TYPE (counter, gauge, histogram). */
  types: Record<string, string>;
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types[type[1]!] = type[2]!;
      continue;
    }
    samples.push(parseSample(line));
  }
  return { samples, types };
}

function parseSample(line: string): Sample {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (name === undefined) throw new Error(`not a sample: ${line}`);
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    while (line[i] !== "}") {
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
      if (key === undefined || line[i + key.length] !== "=" || line[i + key.length + 1] !== '"') {
        throw new Error(`bad labels: ${line}`);
      }
      i += key.length + 2;
      let value = "";
      while (line[i] !== '"') {
        if (i >= line.length) throw new Error(`unterminated label value: ${line}`);
        if (line[i] === "\\") {
          const next = line[i + 1];
          value += next === "n" ? "\n" : next;
          i += 2;
        } else {
          value += line[i];
          i++;
        }
      }
      labels[key] = value;
      i++;
      if (line[i] === ",") i++;
    }
    i++;
  }
  const raw = line.slice(i).trim();
  const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
  if (raw === "" || Number.isNaN(value) && raw !== "NaN") throw new Error(`bad value: ${line}`);
  return { name, labels, value };
}

/** The sum of the samples named `name` whose labels include every pair of `match`. */
export function total(exposition: Exposition, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of exposition.samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
