// "Select by value" queries as people write them: `percent_mito < 5`, `n_genes >= 200`,
// `200 <= n_genes < 2500`, `CD3E > 1`, `total_counts between 1000 and 5000`. The name
// is an obs column or a gene; which one is decided by the caller (it knows both lists).

const NUMBER = String.raw`[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?`;
const OP = String.raw`<=|>=|==|=|<|>|≤|≥`;
const ONE_SIDED = new RegExp(String.raw`^\s*(.+?)\s*(${OP})\s*(${NUMBER})\s*$`);
const REVERSED = new RegExp(String.raw`^\s*(${NUMBER})\s*(${OP})\s*(.+?)\s*$`);
const TWO_SIDED = new RegExp(String.raw`^\s*(${NUMBER})\s*(<=|<|≤)\s*(.+?)\s*(<=|<|≤)\s*(${NUMBER})\s*$`);
const BETWEEN = new RegExp(String.raw`^\s*(.+?)\s+between\s+(${NUMBER})\s+and\s+(${NUMBER})\s*$`, "i");

const NORMAL = { "≤": "<=", "≥": ">=", "=": "==" };
const norm = (op) => NORMAL[op] || op;
const FLIP = { "<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==" };

function bound(name, op, value) {
  switch (norm(op)) {
    case "<": return { name, hi: value, hiOpen: true };
    case "<=": return { name, hi: value };
    case ">": return { name, lo: value, loOpen: true };
    case ">=": return { name, lo: value };
    default: return { name, lo: value, hi: value };
  }
}

export class QueryError extends Error {}

/**
 * Parse a query into { name, lo, hi, loOpen, hiOpen } (absent bounds omitted).
 * Throws QueryError with a sentence saying what form is expected.
 */
export function parseQuery(text) {
  const unquote = (s) => s.replace(/^(["'`])(.*)\1$/, "$2");
  let m = TWO_SIDED.exec(text);
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[5]);
    if (lo > hi) throw new QueryError(`The range ${lo} to ${hi} is empty; write the smaller number first.`);
    return { name: unquote(m[3]), lo, loOpen: norm(m[2]) === "<", hi, hiOpen: norm(m[4]) === "<" };
  }
  m = BETWEEN.exec(text);
  if (m) {
    const [lo, hi] = [Number(m[2]), Number(m[3])].sort((a, b) => a - b);
    return { name: unquote(m[1]), lo, hi };
  }
  m = ONE_SIDED.exec(text);
  if (m && !REVERSED.test(text)) return bound(unquote(m[1]), m[2], Number(m[3]));
  m = REVERSED.exec(text);
  if (m) return bound(unquote(m[3]), FLIP[norm(m[2])], Number(m[1]));
  throw new QueryError("Write a condition such as “percent_mito < 5”, “200 <= n_genes < 2500” or “CD3E > 1”.");
}

/** The query as text again (for the box after brushing the histogram). */
export function formatQuery({ name, lo, hi, loOpen, hiOpen }, format = String) {
  const hasLo = lo !== undefined && Number.isFinite(lo);
  const hasHi = hi !== undefined && Number.isFinite(hi);
  if (hasLo && hasHi) return `${format(lo)} ${loOpen ? "<" : "<="} ${name} ${hiOpen ? "<" : "<="} ${format(hi)}`;
  if (hasLo) return `${name} ${loOpen ? ">" : ">="} ${format(lo)}`;
  if (hasHi) return `${name} ${hiOpen ? "<" : "<="} ${format(hi)}`;
  return name;
}
