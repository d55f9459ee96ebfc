//! Deterministic evaluation corpus for prompt preparation, shared by the
//! quality test (`tests/prompt_eval.rs`) and the benchmark
//! (`benches/prepare.rs`).
//!
//! Each language has hand-written function templates (`@e@` = snake_case
//! entity, `@E@` = PascalCase, `@c@` = camelCase) instantiated over a list of
//! entities, so a file holds many sibling functions that share structure and
//! vocabulary — the hard case for ranking — and the instruction names one of
//! them. Every prompt also holds a block of functions pasted several times.
//! Nothing here is random at run time: a small xorshift generator seeded by the
//! case number makes every choice.
#![allow(dead_code)]

/// Languages of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    JavaScript,
    Rust,
    C,
}

impl Lang {
    /// Fence tag / canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
            Lang::Rust => "rust",
            Lang::C => "c",
        }
    }

    fn comment(self) -> &'static str {
        match self {
            Lang::Python => "#",
            _ => "//",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Lang::Python => PY_HEADER,
            Lang::JavaScript => JS_HEADER,
            Lang::Rust => RS_HEADER,
            Lang::C => C_HEADER,
        }
    }

    fn templates(self) -> &'static [Template] {
        match self {
            Lang::Python => PY_TEMPLATES,
            Lang::JavaScript => JS_TEMPLATES,
            Lang::Rust => RS_TEMPLATES,
            Lang::C => C_TEMPLATES,
        }
    }
}

/// Where the named function sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Start,
    Middle,
    End,
}

/// How the instruction is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A marker comment after the code (`# INSTRUCTION:`, `// TODO:`, …).
    Marker,
    /// A chat message: prose, then the code in a fence.
    Chat,
    /// A separate instruction (OpenAI system message); the text is code only.
    Given,
}

/// One evaluation prompt.
#[derive(Debug, Clone)]
pub struct Case {
    /// Case number.
    pub id: usize,
    pub lang: Lang,
    pub place: Place,
    pub form: Form,
    /// The prompt text.
    pub text: String,
    /// The separately given instruction, for [`Form::Given`].
    pub instruction: Option<String>,
    /// The name of the function the instruction is about.
    pub name: String,
    /// The named function's full text, exactly as it appears in `text`.
    pub function: String,
    /// How many times the repeated block was pasted.
    pub copies: usize,
}

/// A function template: its name pattern and its text.
pub struct Template {
    pub name: &'static str,
    pub body: &'static str,
}

/// Entities the templates are instantiated over.
const ENTITIES: &[&str] = &[
    "invoice",
    "order",
    "customer",
    "shipment",
    "product",
    "payment",
    "ticket",
    "session",
    "review",
    "coupon",
    "warehouse",
    "supplier",
    "purchase_order",
    "user_account",
    "stock_item",
    "tax_rule",
];

/// Instruction phrasings; `{name}` is replaced by the function's name, written
/// in one of several ways.
const TASKS: &[&str] = &[
    "Refactor {name} so it is easier to test, and add comments explaining each step.",
    "{name} is too slow on large inputs. Optimise it without changing its behaviour.",
    "Add proper error handling to {name} and document what it returns.",
    "Rename the local variables in {name} so they say what they hold.",
    "There is a bug in {name}: it sometimes returns the wrong result for empty input. Fix it.",
    "Split {name} into smaller helper functions.",
];

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn camel(snake: &str) -> String {
    let p = pascal(snake);
    let mut c = p.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn fill(pattern: &str, entity: &str) -> String {
    pattern
        .replace("@E@", &pascal(entity))
        .replace("@c@", &camel(entity))
        .replace("@e@", entity)
}

/// Is a template name a function's (rather than a type's: `@E@Store`,
/// `Display for @E@`, `@e@_t`)?
fn is_function(name: &str) -> bool {
    !name.starts_with("@E@") && !name.contains(' ') && !name.ends_with("_t")
}

/// A template instantiated for one entity: (name, text).
fn instance(lang: Lang, template: usize, entity: usize) -> (String, String) {
    let t = &lang.templates()[template];
    let e = ENTITIES[entity];
    (fill(t.name, e), fill(t.body, e))
}

/// The corpus: 24 prompts, six per language, from about 3 KB to 16 KB, with
/// the named function at the start, middle or end, and the instruction as a
/// marker, a chat message or a separate instruction.
pub fn cases() -> Vec<Case> {
    let langs = [Lang::Python, Lang::JavaScript, Lang::Rust, Lang::C];
    let n = 24;
    (0..n)
        .map(|i| {
            let lang = langs[i % 4];
            // Sizes spread evenly over 3.1–15.9 KB, interleaved across languages.
            let size = 3100 + (i * 7 % n) * (15900 - 3100) / (n - 1);
            let place = [Place::Start, Place::Middle, Place::End][(i / 4) % 3];
            let form = [Form::Marker, Form::Chat, Form::Given, Form::Marker][(i / 2) % 4];
            build(i, lang, size, place, form)
        })
        .collect()
}

/// One prompt of about `size` bytes (the code part is filled up to it).
pub fn build(id: usize, lang: Lang, size: usize, place: Place, form: Form) -> Case {
    let mut rng = Rng::new(id as u64 + 1);
    let templates = lang.templates().len();
    let mut pool: Vec<(usize, usize)> = (0..templates)
        .flat_map(|t| (0..ENTITIES.len()).map(move |e| (t, e)))
        .collect();
    rng.shuffle(&mut pool);
    // The named function: a function template (not a type), cycling through
    // them per language so each is named once, and the longest one (which
    // spans two chunks) twice.
    let functions: Vec<usize> = (0..templates)
        .filter(|&t| is_function(lang.templates()[t].name))
        .collect();
    let round = id / 4;
    let nt = match round {
        0 | 4 => functions[functions.len() - 1],
        r => functions[(r - 1) % functions.len()],
    };
    let named_at = pool.iter().position(|&(t, _)| t == nt).unwrap_or(0);
    let (nt, ne) = pool.remove(named_at);
    let (name, function) = instance(lang, nt, ne);
    // The repeated block: two functions pasted 2–5 times.
    let copies = 2 + rng.below(4);
    let block: String = pool
        .drain(..2)
        .map(|(t, e)| instance(lang, t, e).1 + "\n")
        .collect();
    let partial_last = id % 3 == 1;
    let last_copy: String = if partial_last {
        // The last paste stops halfway through the block.
        let lines: Vec<&str> = block.lines().collect();
        lines[..lines.len() / 2].join("\n") + "\n\n"
    } else {
        block.clone()
    };
    let repeated_len = block.len() * (copies - 1) + last_copy.len();

    // Fill with other functions until the prompt reaches `size`.
    let overhead = lang.header().len() + function.len() + 1 + repeated_len + 200;
    let mut others: Vec<String> = Vec::new();
    let mut used = overhead;
    for &(t, e) in &pool {
        if used >= size {
            break;
        }
        let (_, text) = instance(lang, t, e);
        if used + text.len() > size + 300 {
            continue;
        }
        used += text.len() + 1;
        others.push(text);
    }
    let mut parts: Vec<String> = others.into_iter().map(|t| t + "\n").collect();
    let named_pos = match place {
        Place::Start => 0,
        Place::Middle => parts.len() / 2,
        Place::End => parts.len(),
    };
    parts.insert(named_pos, function.clone() + "\n");
    // Paste the repeated block away from the named function.
    let repeat_pos = match place {
        Place::Start => (parts.len() * 2) / 3,
        Place::Middle => parts.len() / 5,
        Place::End => parts.len() / 3,
    }
    .min(parts.len().saturating_sub(1))
    .max(1);
    let repeat_pos = if repeat_pos == named_pos || repeat_pos == named_pos + 1 {
        (named_pos + 2).min(parts.len())
    } else {
        repeat_pos
    };
    let mut pasted = block.repeat(copies - 1);
    pasted.push_str(&last_copy);
    parts.insert(repeat_pos, pasted);
    let code = format!("{}\n{}", lang.header(), parts.concat());

    let task = TASKS[id % TASKS.len()];
    let written = match id % 3 {
        0 => format!("`{name}`"),
        1 => format!("{name}()"),
        _ => name.clone(),
    };
    let task = task.replace("{name}", &written);
    let (text, instruction) = match form {
        Form::Marker => {
            let marker = ["INSTRUCTION:", "TODO:", "REFACTOR:"][id % 3];
            let c = lang.comment();
            (
                format!("{code}\n{c} {marker} {task}\n{c} Keep the public interface unchanged.\n"),
                None,
            )
        }
        Form::Chat => (
            format!(
                "Hi! {task}\n\nHere is the file:\n\n```{}\n{code}```\n\nThanks in advance.",
                lang.name()
            ),
            None,
        ),
        Form::Given => (
            code,
            Some(format!("You are a careful senior engineer. {task}")),
        ),
    };
    Case {
        id,
        lang,
        place,
        form,
        text,
        instruction,
        name,
        function,
        copies,
    }
}

// ---------------------------------------------------------------- Python ---

const PY_HEADER: &str = "import csv\nimport json\nimport logging\nimport time\nfrom collections import Counter, defaultdict\nfrom dataclasses import dataclass, field\nfrom pathlib import Path\n\nlog = logging.getLogger(__name__)\n\nMAX_RETRIES = 3\nBATCH_SIZE = 200\n";

const PY_TEMPLATES: &[Template] = &[
    Template {
        name: "load_@e@s",
        body: r#"def load_@e@s(path):
    """Read @e@ records from a JSON lines file, skipping broken lines."""
    @e@s = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                log.warning("line %d of %s: %s", number, path, err)
                continue
            @e@s.append(record)
    return @e@s
"#,
    },
    Template {
        name: "validate_@e@",
        body: r#"def validate_@e@(record):
    """Check a @e@ record and raise ValueError on the first problem."""
    if "id" not in record:
        raise ValueError("@e@ without id")
    if not isinstance(record.get("amount", 0), (int, float)):
        raise ValueError(f"@e@ {record['id']}: amount is not a number")
    if record.get("amount", 0) < 0:
        raise ValueError(f"@e@ {record['id']}: negative amount")
    status = record.get("status", "new")
    if status not in ("new", "active", "closed"):
        raise ValueError(f"@e@ {record['id']}: unknown status {status!r}")
    return True
"#,
    },
    Template {
        name: "summarize_@e@s",
        body: r#"def summarize_@e@s(@e@s):
    """Count @e@s per status and total their amounts."""
    per_status = Counter()
    totals = defaultdict(float)
    for item in @e@s:
        status = item.get("status", "new")
        per_status[status] += 1
        totals[status] += float(item.get("amount", 0))
    return {
        "count": sum(per_status.values()),
        "per_status": dict(per_status),
        "totals": {key: round(value, 2) for key, value in totals.items()},
    }
"#,
    },
    Template {
        name: "fetch_@e@",
        body: r#"def fetch_@e@(client, @e@_id, retries=MAX_RETRIES):
    """GET one @e@ from the API, retrying on server errors."""
    delay = 0.5
    for attempt in range(1, retries + 1):
        response = client.get(f"/api/@e@s/{@e@_id}", timeout=10)
        if response.status_code == 404:
            return None
        if response.status_code < 500:
            response.raise_for_status()
            return response.json()
        log.info("fetch_@e@ %s: attempt %d got %d", @e@_id, attempt, response.status_code)
        time.sleep(delay)
        delay *= 2
    raise RuntimeError(f"@e@ {@e@_id}: giving up after {retries} attempts")
"#,
    },
    Template {
        name: "export_@e@s_csv",
        body: r#"def export_@e@s_csv(@e@s, path, columns=("id", "status", "amount")):
    """Write @e@s to a CSV file with a header row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for item in @e@s:
            writer.writerow({key: item.get(key, "") for key in columns})
    return path
"#,
    },
    Template {
        name: "@E@Repository",
        body: r#"class @E@Repository:
    """Keeps @e@s in memory, indexed by id."""

    def __init__(self, items=()):
        self._items = {}
        for item in items:
            self.save(item)

    def get(self, @e@_id):
        return self._items.get(@e@_id)

    def save(self, item):
        if "id" not in item:
            raise KeyError("@e@ needs an id")
        self._items[item["id"]] = dict(item)
        return item["id"]

    def delete(self, @e@_id):
        return self._items.pop(@e@_id, None) is not None

    def active(self):
        return [i for i in self._items.values() if i.get("status") == "active"]
"#,
    },
    Template {
        name: "merge_@e@_updates",
        body: r#"def merge_@e@_updates(current, updates, protected=("id", "created_at")):
    """Apply partial updates to a @e@, refusing to change protected fields."""
    merged = dict(current)
    conflicts = []
    for key, value in updates.items():
        if key in protected and merged.get(key) != value:
            conflicts.append(key)
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if conflicts:
        log.warning("@e@ %s: ignored changes to %s", current.get("id"), ", ".join(conflicts))
    return merged
"#,
    },
    Template {
        name: "process_@e@_batch",
        body: r#"def process_@e@_batch(client, @e@_ids, repository, dry_run=False):
    """Fetch, validate and store a batch of @e@s; return a report."""
    started = time.monotonic()
    report = {"fetched": 0, "missing": [], "invalid": {}, "stored": 0}
    for start in range(0, len(@e@_ids), BATCH_SIZE):
        chunk = @e@_ids[start:start + BATCH_SIZE]
        for @e@_id in chunk:
            record = fetch_@e@(client, @e@_id)
            if record is None:
                report["missing"].append(@e@_id)
                continue
            report["fetched"] += 1
            try:
                validate_@e@(record)
            except ValueError as err:
                report["invalid"][@e@_id] = str(err)
                continue
            existing = repository.get(@e@_id)
            if existing is not None:
                record = merge_@e@_updates(existing, record)
            if not dry_run:
                repository.save(record)
                report["stored"] += 1
        log.info("process_@e@_batch: %d/%d done", min(start + BATCH_SIZE, len(@e@_ids)), len(@e@_ids))
    report["seconds"] = round(time.monotonic() - started, 3)
    if report["invalid"]:
        log.warning("%d invalid @e@s", len(report["invalid"]))
    return report
"#,
    },
];

// ------------------------------------------------------------ JavaScript ---

const JS_HEADER: &str = "'use strict';\n\nconst fs = require('fs/promises');\nconst path = require('path');\nconst { EventEmitter } = require('events');\n\nconst API_BASE = process.env.API_BASE || 'https://api.example.com';\nconst RETRY_LIMIT = 3;\n";

const JS_TEMPLATES: &[Template] = &[
    Template {
        name: "fetch@E@",
        body: r#"async function fetch@E@(id, { retries = RETRY_LIMIT } = {}) {
  let delay = 250;
  for (let attempt = 1; attempt <= retries; attempt++) {
    const res = await fetch(`${API_BASE}/@e@s/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (res.ok) return res.json();
    if (res.status < 500) throw new Error(`fetch@E@ ${id}: HTTP ${res.status}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay *= 2;
  }
  throw new Error(`fetch@E@ ${id}: gave up after ${retries} attempts`);
}
"#,
    },
    Template {
        name: "validate@E@",
        body: r#"function validate@E@(input) {
  const errors = [];
  if (!input || typeof input !== 'object') return ['@c@ must be an object'];
  if (!input.id) errors.push('@c@.id is required');
  if (typeof input.amount !== 'number' || Number.isNaN(input.amount)) {
    errors.push('@c@.amount must be a number');
  } else if (input.amount < 0) {
    errors.push('@c@.amount must not be negative');
  }
  if (input.status && !['new', 'active', 'closed'].includes(input.status)) {
    errors.push(`@c@.status ${input.status} is unknown`);
  }
  return errors;
}
"#,
    },
    Template {
        name: "@E@Store",
        body: r#"class @E@Store extends EventEmitter {
  constructor(items = []) {
    super();
    this.byId = new Map();
    items.forEach((item) => this.add(item));
  }

  add(@c@) {
    if (!@c@.id) throw new TypeError('@c@ needs an id');
    this.byId.set(@c@.id, { ...@c@ });
    this.emit('added', @c@.id);
    return @c@.id;
  }

  remove(id) {
    const existed = this.byId.delete(id);
    if (existed) this.emit('removed', id);
    return existed;
  }

  find(predicate) {
    return [...this.byId.values()].filter(predicate);
  }
}
"#,
    },
    Template {
        name: "format@E@Row",
        body: r#"const format@E@Row = (@c@, { currency = 'EUR', locale = 'en-GB' } = {}) => {
  const amount = new Intl.NumberFormat(locale, { style: 'currency', currency }).format(
    @c@.amount || 0,
  );
  const when = @c@.createdAt ? new Date(@c@.createdAt).toLocaleDateString(locale) : '—';
  return [String(@c@.id).padEnd(12), (@c@.status || 'new').padEnd(8), amount.padStart(14), when].join(' ');
};
"#,
    },
    Template {
        name: "group@E@sBy",
        body: r#"function group@E@sBy(@c@s, key) {
  return @c@s.reduce((groups, @c@) => {
    const value = typeof key === 'function' ? key(@c@) : @c@[key];
    const bucket = groups.get(value) || [];
    bucket.push(@c@);
    groups.set(value, bucket);
    return groups;
  }, new Map());
}
"#,
    },
    Template {
        name: "save@E@sToDisk",
        body: r#"async function save@E@sToDisk(@c@s, dir) {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `@e@s-${Date.now()}.json`);
  const tmp = `${file}.tmp`;
  const payload = JSON.stringify({ savedAt: new Date().toISOString(), items: @c@s }, null, 2);
  await fs.writeFile(tmp, payload, 'utf8');
  await fs.rename(tmp, file);
  return file;
}
"#,
    },
    Template {
        name: "sync@E@s",
        body: r#"async function sync@E@s(store, ids, { dryRun = false, onProgress = () => {} } = {}) {
  const report = { fetched: 0, missing: [], invalid: {}, stored: 0 };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const remote = await fetch@E@(id);
    if (remote === null) {
      report.missing.push(id);
      continue;
    }
    report.fetched++;
    const errors = validate@E@(remote);
    if (errors.length > 0) {
      report.invalid[id] = errors;
      continue;
    }
    const [local] = store.find((item) => item.id === id);
    const merged = local ? { ...local, ...remote, id } : remote;
    if (!dryRun) {
      store.add(merged);
      report.stored++;
    }
    onProgress({ done: i + 1, total: ids.length });
  }
  if (Object.keys(report.invalid).length > 0) {
    console.warn(`sync@E@s: ${Object.keys(report.invalid).length} invalid @c@s`);
  }
  return report;
}
"#,
    },
];

// ------------------------------------------------------------------ Rust ---

const RS_HEADER: &str = "use std::collections::HashMap;\nuse std::fmt;\nuse std::fs;\nuse std::io::{self, BufRead};\nuse std::path::Path;\n\nconst MAX_LINE: usize = 4096;\n";

const RS_TEMPLATES: &[Template] = &[
    Template {
        name: "@E@",
        body: r#"#[derive(Debug, Clone, PartialEq)]
pub struct @E@ {
    pub id: u64,
    pub name: String,
    pub amount_cents: i64,
    pub active: bool,
}

impl @E@ {
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        @E@ {
            id,
            name: name.into(),
            amount_cents: 0,
            active: true,
        }
    }
}
"#,
    },
    Template {
        name: "parse_@e@",
        body: r#"pub fn parse_@e@(line: &str) -> Result<@E@, String> {
    if line.len() > MAX_LINE {
        return Err(format!("@e@ line too long: {} bytes", line.len()));
    }
    let mut fields = line.split(',').map(str::trim);
    let id = fields
        .next()
        .ok_or("missing id")?
        .parse::<u64>()
        .map_err(|e| format!("bad @e@ id: {e}"))?;
    let name = fields.next().ok_or("missing name")?.to_string();
    let amount_cents = match fields.next() {
        Some(raw) => raw.parse::<i64>().map_err(|e| format!("bad amount: {e}"))?,
        None => 0,
    };
    let active = fields.next().is_none_or(|f| f != "inactive");
    Ok(@E@ { id, name, amount_cents, active })
}
"#,
    },
    Template {
        name: "Display for @E@",
        body: r#"impl fmt::Display for @E@ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let euros = self.amount_cents / 100;
        let cents = (self.amount_cents % 100).abs();
        let state = if self.active { "active" } else { "inactive" };
        write!(f, "@e@ #{} {} {}.{:02} ({})", self.id, self.name, euros, cents, state)
    }
}
"#,
    },
    Template {
        name: "load_@e@s",
        body: r#"pub fn load_@e@s(path: &Path) -> io::Result<Vec<@E@>> {
    let file = fs::File::open(path)?;
    let mut out = Vec::new();
    for (number, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_@e@(&line) {
            Ok(item) => out.push(item),
            Err(e) => eprintln!("{}:{}: {e}", path.display(), number + 1),
        }
    }
    Ok(out)
}
"#,
    },
    Template {
        name: "total_@e@_cents",
        body: r#"pub fn total_@e@_cents(items: &[@E@], only_active: bool) -> i64 {
    items
        .iter()
        .filter(|item| !only_active || item.active)
        .map(|item| item.amount_cents)
        .fold(0i64, |acc, cents| acc.saturating_add(cents))
}
"#,
    },
    Template {
        name: "index_@e@s_by_id",
        body: r#"pub fn index_@e@s_by_id(items: Vec<@E@>) -> Result<HashMap<u64, @E@>, String> {
    let mut index = HashMap::with_capacity(items.len());
    for item in items {
        let id = item.id;
        if let Some(previous) = index.insert(id, item) {
            return Err(format!("duplicate @e@ id {id} (first: {})", previous.name));
        }
    }
    Ok(index)
}
"#,
    },
    Template {
        name: "reconcile_@e@s",
        body: r#"pub fn reconcile_@e@s(
    local: &HashMap<u64, @E@>,
    remote: &[@E@],
    dry_run: bool,
) -> (Vec<@E@>, Vec<String>) {
    let mut changed = Vec::new();
    let mut notes = Vec::new();
    for theirs in remote {
        match local.get(&theirs.id) {
            None => {
                notes.push(format!("new @e@ {}", theirs.id));
                changed.push(theirs.clone());
            }
            Some(ours) if ours == theirs => {}
            Some(ours) => {
                if ours.amount_cents != theirs.amount_cents {
                    notes.push(format!(
                        "@e@ {}: amount {} -> {}",
                        theirs.id, ours.amount_cents, theirs.amount_cents
                    ));
                }
                if ours.active && !theirs.active {
                    notes.push(format!("@e@ {} deactivated", theirs.id));
                }
                let mut merged = ours.clone();
                merged.amount_cents = theirs.amount_cents;
                merged.active = theirs.active;
                if !theirs.name.is_empty() {
                    merged.name = theirs.name.clone();
                }
                changed.push(merged);
            }
        }
    }
    if dry_run {
        notes.push(format!("dry run: {} @e@s would change", changed.len()));
        changed.clear();
    }
    (changed, notes)
}
"#,
    },
];

// --------------------------------------------------------------------- C ---

const C_HEADER: &str = "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <errno.h>\n\n#define NAME_MAX_LEN 64\n#define LINE_MAX_LEN 256\n";

const C_TEMPLATES: &[Template] = &[
    Template {
        name: "@e@_t",
        body: r#"typedef struct @e@ {
    long id;
    char name[NAME_MAX_LEN];
    long amount_cents;
    int active;
    struct @e@ *next;
} @e@_t;
"#,
    },
    Template {
        name: "@e@_new",
        body: r#"@e@_t *@e@_new(long id, const char *name)
{
    @e@_t *item = calloc(1, sizeof(*item));
    if (item == NULL) {
        return NULL;
    }
    item->id = id;
    strncpy(item->name, name, NAME_MAX_LEN - 1);
    item->name[NAME_MAX_LEN - 1] = '\0';
    item->active = 1;
    return item;
}
"#,
    },
    Template {
        name: "@e@_list_free",
        body: r#"void @e@_list_free(@e@_t *head)
{
    while (head != NULL) {
        @e@_t *next = head->next;
        free(head);
        head = next;
    }
}
"#,
    },
    Template {
        name: "@e@_parse",
        body: r#"int @e@_parse(const char *line, @e@_t *out)
{
    char name[NAME_MAX_LEN];
    long id = 0;
    long cents = 0;
    int fields;

    if (line == NULL || out == NULL) {
        return -EINVAL;
    }
    fields = sscanf(line, "%ld,%63[^,],%ld", &id, name, &cents);
    if (fields < 2) {
        return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    out->id = id;
    strncpy(out->name, name, NAME_MAX_LEN - 1);
    out->amount_cents = fields == 3 ? cents : 0;
    out->active = 1;
    return 0;
}
"#,
    },
    Template {
        name: "@e@_compare_amount",
        body: r#"static int @e@_compare_amount(const void *a, const void *b)
{
    const @e@_t *left = *(const @e@_t *const *)a;
    const @e@_t *right = *(const @e@_t *const *)b;

    if (left->amount_cents < right->amount_cents) {
        return -1;
    }
    if (left->amount_cents > right->amount_cents) {
        return 1;
    }
    return (left->id > right->id) - (left->id < right->id);
}
"#,
    },
    Template {
        name: "@e@_print",
        body: r#"void @e@_print(FILE *out, const @e@_t *item)
{
    fprintf(out, "@e@ #%ld %-20s %8ld.%02ld %s\n",
            item->id,
            item->name,
            item->amount_cents / 100,
            labs(item->amount_cents % 100),
            item->active ? "active" : "inactive");
}
"#,
    },
    Template {
        name: "@e@_load_file",
        body: r#"int @e@_load_file(const char *path, @e@_t **head, size_t *count)
{
    char line[LINE_MAX_LEN];
    FILE *in;
    size_t loaded = 0;
    size_t number = 0;
    @e@_t *tail = NULL;

    in = fopen(path, "r");
    if (in == NULL) {
        return -errno;
    }
    *head = NULL;
    while (fgets(line, sizeof(line), in) != NULL) {
        @e@_t parsed;
        @e@_t *item;

        number++;
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (@e@_parse(line, &parsed) != 0) {
            fprintf(stderr, "%s:%zu: bad @e@ line\n", path, number);
            continue;
        }
        item = @e@_new(parsed.id, parsed.name);
        if (item == NULL) {
            fclose(in);
            @e@_list_free(*head);
            *head = NULL;
            return -ENOMEM;
        }
        item->amount_cents = parsed.amount_cents;
        if (tail == NULL) {
            *head = item;
        } else {
            tail->next = item;
        }
        tail = item;
        loaded++;
    }
    fclose(in);
    *count = loaded;
    return 0;
}
"#,
    },
];
