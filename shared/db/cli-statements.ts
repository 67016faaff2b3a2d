// A migration's statements as Supabase's CLI splits them (`supabase db push`, `migration up`, seeding):
// a port of its tokenizer, github.com/supabase/cli apps/cli-go/pkg/parser (state.go, token.go:
// Split, SplitAndTrim). The CLI sends each statement on its own (extended protocol, one implicit
// transaction per file) and records them in supabase_migrations.schema_migrations.statements, so the
// project's runner (migrate.ts) splits, runs and records the same way: a file the CLI would split
// wrongly fails here too, and the records are the CLI's (tests/deploy/cli-parity.test.ts).
//
// Each statement is kept as written (comments included), its trailing `;` removed and then its
// surrounding white space; empty ones are dropped. A `;` ends a statement except inside quotes
// ('...', "..."), dollar quotes, comments (--, nested /* */), parentheses, a BEGIN ATOMIC ... END
// body, or right after a backslash.

interface State {
  /** The state after `ch`, `data` being the statement so far (ch included); null ends the statement. */
  next(ch: string, data: string): State | null;
}

const isLetterOrDigit = (ch: string) => /[\p{L}\p{N}]/u.test(ch);
const isIdentifierChar = (ch: string) => isLetterOrDigit(ch) || ch === "_" || ch === "$";

class Ready implements State {
  next(ch: string, data: string): State | null {
    switch (ch) {
      case "$":
        return new Tag(data.length - 1);
      case "'":
      case '"':
        return new Quote(ch);
      case "-":
        return new Comment();
      case "/":
        return new Block();
      case "\\":
        return new Escape();
      case ";":
        return null;
      case "(":
        return new Atomic(this, ")");
      case "c":
      case "C":
        if (isBeginAtomic(data)) return new Atomic(this, "END");
    }
    return this;
  }
}

function isBeginAtomic(data: string): boolean {
  let offset = data.length - "ATOMIC".length;
  if (offset < 0 || data.slice(offset).toUpperCase() !== "ATOMIC") return false;
  if (offset > 0 && isIdentifierChar(lastChar(data.slice(0, offset)))) return false;
  const prefix = data.slice(0, offset).trimEnd();
  offset = prefix.length - "BEGIN".length;
  if (offset < 0 || prefix.slice(offset).toUpperCase() !== "BEGIN") return false;
  return offset === 0 || !isIdentifierChar(lastChar(prefix.slice(0, offset)));
}

function lastChar(text: string): string {
  return Array.from(text.slice(-2)).at(-1) ?? "";
}

class Comment implements State {
  next(ch: string, data: string): State | null {
    // No character is escaped in a comment: it reads like a dollar quote ending at the line's end.
    if (ch === "-") return new Dollar("\n");
    return new Ready().next(ch, data);
  }
}

class Block implements State {
  depth = 0;
  next(ch: string, data: string): State | null {
    const window = data.slice(-2);
    if (window === "/*") {
      this.depth += 1;
      return this;
    }
    if (this.depth === 0) return new Ready().next(ch, data);
    if (window === "*/") {
      this.depth -= 1;
      if (this.depth === 0) return new Ready();
    }
    return this;
  }
}

class Quote implements State {
  escape = false;
  constructor(private readonly delimiter: string) {}
  next(ch: string, data: string): State | null {
    if (this.escape) {
      // A doubled quote ('') stays inside the quote.
      if (ch === this.delimiter) {
        this.escape = false;
        return this;
      }
      return new Ready().next(ch, data);
    }
    if (ch === this.delimiter) this.escape = true;
    return this;
  }
}

class Dollar implements State {
  constructor(private readonly delimiter: string) {}
  next(_ch: string, data: string): State | null {
    return data.endsWith(this.delimiter) ? new Ready() : this;
  }
}

class Tag implements State {
  constructor(private readonly offset: number) {}
  next(ch: string, data: string): State | null {
    if (ch === "$") return new Dollar(data.slice(this.offset));
    if (isLetterOrDigit(ch) || ch === "_") return this;
    return new Ready().next(ch, data);
  }
}

class Escape implements State {
  next(): State | null {
    return new Ready();
  }
}

class Atomic implements State {
  constructor(private prev: State, private readonly delimiter: string) {}
  next(ch: string, data: string): State | null {
    // Inside a quote of its own, the delimiter does not count.
    const current = this.prev.next(ch, data);
    if (current !== null) this.prev = current;
    if (this.prev instanceof Ready && data.slice(-this.delimiter.length).toUpperCase() === this.delimiter.toUpperCase()) {
      return new Ready();
    }
    return this;
  }
}

/** The statements of `text` as the CLI's SplitAndTrim gives them. */
export function cliStatements(text: string): string[] {
  const statements: string[] = [];
  let state: State = new Ready();
  let start = 0;
  const emit = (end: number) => {
    const trimmed = text.slice(start, end).replace(/;+$/, "").trim();
    if (trimmed.length > 0) statements.push(trimmed);
    start = end;
  };
  for (let i = 0; i < text.length;) {
    const ch = String.fromCodePoint(text.codePointAt(i)!);
    i += ch.length;
    const next = state.next(ch, text.slice(start, i));
    if (next === null) {
      emit(i);
      state = new Ready();
    } else {
      state = next;
    }
  }
  emit(text.length);
  return statements;
}
