//! Unit tests of the whole pipeline; per-step tests live in each module.

use super::*;

fn input(text: &str) -> PromptInput<'_> {
    PromptInput {
        text,
        instruction: None,
        language: None,
    }
}

/// `count` distinct Python functions of about 300 characters each.
fn python_functions(count: usize, tag: &str) -> String {
    (0..count)
        .map(|i| {
            format!(
                "def {tag}_helper_{i}(records, limit={i}):\n    \"\"\"Filter {tag} records, variant {i}.\"\"\"\n    selected = []\n    for record in records:\n        if record.get(\"{tag}_score_{i}\", 0) > limit:\n            selected.append(record)\n    selected.sort(key=lambda r: r[\"{tag}_key_{i}\"])\n    return selected[:{i}0]\n\n"
            )
        })
        .collect()
}

#[test]
fn default_config_is_the_originals_figures() {
    let c = PrepareConfig::default();
    assert_eq!(
        (c.threshold_chars, c.chunk_chars, c.overlap_chars, c.top_k),
        (1500, 1000, 150, 3)
    );
    assert_eq!((c.query_tail_chars, c.marker_window), (300, 12));
    assert!((c.min_gain - 0.10).abs() < 1e-12);
}

#[test]
fn config_deserializes_partially_and_sanitizes() {
    let c: PrepareConfig = serde_json::from_str(r#"{"top_k": 5}"#).unwrap_or_default();
    assert_eq!(c.top_k, 5);
    assert_eq!(c.chunk_chars, 1000);
    let bad = PrepareConfig {
        chunk_chars: 0,
        overlap_chars: 10,
        top_k: 0,
        min_gain: f64::NAN,
        ..PrepareConfig::default()
    };
    let s = bad.sanitized();
    assert_eq!((s.chunk_chars, s.overlap_chars, s.top_k), (1, 0, 1));
    assert!((s.min_gain - 0.10).abs() < 1e-12);
}

#[test]
fn small_prompt_is_unchanged() {
    let text = "def f():\n    return 1\n# TODO: make it 2\n";
    let plan = prepare(&input(text), &PrepareConfig::default());
    assert_eq!(plan.prompt, text);
    assert!(!plan.applied);
    assert_eq!(plan.instruction.as_deref(), Some("# TODO: make it 2"));
    assert_eq!(plan.language.as_deref(), Some("python"));
    let s = &plan.stats;
    assert_eq!(
        (s.original_chars, s.final_chars, s.chunks_total),
        (40, 40, 0)
    );
    assert!(
        s.skipped_reason
            .as_deref()
            .is_some_and(|r| r.contains("threshold"))
    );
    assert_eq!(s.kept_ranges.len(), 1);
    assert_eq!((s.kept_ranges[0].start, s.kept_ranges[0].end), (0, 40));
}

#[test]
fn empty_prompt() {
    let plan = prepare(&input(""), &PrepareConfig::default());
    assert_eq!(plan.prompt, "");
    assert!(!plan.applied);
    assert!(plan.stats.kept_ranges.is_empty());
}

#[test]
fn threshold_counts_code_not_instruction() {
    let code = "x = 1\n".repeat(200); // 1,200 chars of code
    let text = format!("{code}# INSTRUCTION: {}\n", "explain ".repeat(100));
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(!plan.applied);
    assert_eq!(plan.prompt, text);
}

#[test]
fn five_pastes_give_ten_chunks_two_unique() {
    let block: String = (0..28)
        .map(|i| format!("    total_{i} = accumulate(values, {i}) + offset  # {i}\n"))
        .collect();
    let text = block.repeat(5);
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert_eq!(plan.stats.chunks_total, 10);
    assert_eq!(plan.stats.chunks_unique, 2);
    assert!(plan.applied);
    assert!(plan.prompt.contains(&block), "the block survives once");
    assert!(plan.stats.reduction_percent > 70.0, "{}", plan.stats);
}

#[test]
fn named_function_survives_whole_and_instruction_comes_first() {
    let target = "def compute_invoice_total(invoice, tax_rate):\n    subtotal = 0\n    for line in invoice.lines:\n        subtotal += line.price * line.quantity\n    discount = invoice.discount or 0\n    taxed = (subtotal - discount) * (1 + tax_rate)\n    return round(taxed, 2)\n\n";
    let before = python_functions(12, "alpha");
    let after = python_functions(12, "omega");
    let text = format!(
        "{before}{target}{after}# INSTRUCTION: make compute_invoice_total handle a missing tax_rate\n"
    );
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert!(
        plan.prompt
            .starts_with("# INSTRUCTION: make compute_invoice_total")
    );
    assert!(plan.prompt.contains(target.trim_end()));
    assert!(plan.prompt.contains("```python\n"));
    assert!(plan.prompt.contains("lines omitted …"));
    assert!(plan.stats.reduction_percent >= 60.0, "{}", plan.stats);
    assert!(plan.stats.chunks_kept <= 3);
    // Kept ranges point into the input text.
    let chars: Vec<char> = text.chars().collect();
    for r in &plan.stats.kept_ranges {
        let kept: String = chars[r.start..r.end].iter().collect();
        assert!(plan.prompt.contains(&kept));
        assert!(r.start_line <= r.end_line);
    }
}

#[test]
fn function_split_across_chunks_keeps_both_halves() {
    // A 1,600-character function must span two chunks.
    let mut long_fn = String::from("def rebuild_search_index(documents, analyzer):\n");
    for i in 0..40 {
        long_fn.push_str(&format!(
            "    field_{i:02} = analyzer.tokens(documents[{i}])\n"
        ));
    }
    long_fn.push_str("    return merge_fields(locals())\n\n");
    assert!(long_fn.chars().count() > 1500);
    let text = format!(
        "{}{long_fn}{}# TODO: rebuild_search_index is slow, vectorize it\n",
        python_functions(10, "pre"),
        python_functions(10, "post")
    );
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert!(plan.prompt.contains(long_fn.trim_end()), "{}", plan.prompt);
}

#[test]
fn no_instruction_uses_the_code_tail() {
    let mut text = python_functions(15, "mid");
    text.push_str("def final_step_unique_name(x):\n    return x * 2\n");
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert_eq!(plan.instruction, None);
    assert!(plan.prompt.starts_with("```python\n"));
    assert!(
        plan.prompt
            .contains("def final_step_unique_name(x):\n    return x * 2\n")
    );
}

#[test]
fn chat_message_and_requested_language() {
    let code = python_functions(12, "chat");
    let text = format!("Can you speed up `chat_helper_7`?\n\n```\n{code}```\n\nThanks!");
    let plan = prepare(
        &PromptInput {
            text: &text,
            instruction: None,
            language: Some("py3"),
        },
        &PrepareConfig::default(),
    );
    assert!(plan.applied, "{}", plan.stats);
    assert!(
        plan.prompt
            .starts_with("Can you speed up `chat_helper_7`?\n\nThanks!\n\n```py3\n")
    );
    assert!(plan.prompt.contains("def chat_helper_7(records, limit=7):"));
    assert_eq!(plan.language.as_deref(), Some("py3"));
    // Omission markers use the language's comment syntax.
    assert!(plan.prompt.contains("\n# … "));
}

#[test]
fn given_instruction_is_first() {
    let code = python_functions(12, "sys");
    let plan = prepare(
        &PromptInput {
            text: &code,
            instruction: Some("Document sys_helper_3."),
            language: None,
        },
        &PrepareConfig::default(),
    );
    assert!(plan.applied);
    assert!(
        plan.prompt
            .starts_with("Document sys_helper_3.\n\n```python\n")
    );
    assert!(plan.prompt.contains("def sys_helper_3("));
    // Small prompt with a given instruction: the instruction, then the text.
    let plan = prepare(
        &PromptInput {
            text: "x = 1\n",
            instruction: Some("Explain"),
            language: None,
        },
        &PrepareConfig::default(),
    );
    assert_eq!(plan.prompt, "Explain\n\nx = 1\n");
}

#[test]
fn skip_rule_sends_original_instruction_first() {
    // Every chunk is relevant and top_k covers them all: no gain.
    let code = python_functions(7, "all");
    let text = format!("{code}# INSTRUCTION: review all of it\n");
    let cfg = PrepareConfig {
        top_k: 50,
        ..PrepareConfig::default()
    };
    let plan = prepare(&input(&text), &cfg);
    assert!(!plan.applied);
    assert_eq!(
        plan.prompt,
        format!("# INSTRUCTION: review all of it\n\n{}", code.trim_end())
    );
    assert!(
        plan.stats
            .skipped_reason
            .as_deref()
            .is_some_and(|r| r.contains("minimum"))
    );
    assert!(plan.stats.chunks_total > 0);
}

#[test]
fn detected_language_tags_the_fence() {
    let code: String = (0..30)
        .map(|i| format!("fn handler_{i}(req: &Request) -> Result<Response, Error> {{\n    let mut r = Response::new({i});\n    r.set_status(200);\n    Ok(r)\n}}\n\n"))
        .collect();
    let text = format!("{code}// TODO: make handler_17 return 404 when missing\n");
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert_eq!(plan.language.as_deref(), Some("rust"));
    assert!(plan.prompt.contains("```rust\n"));
    assert!(plan.prompt.contains("// … "));
    assert!(plan.prompt.contains("fn handler_17(req: &Request) -> Result<Response, Error> {\n    let mut r = Response::new(17);\n    r.set_status(200);\n    Ok(r)\n}"));
}

#[test]
fn stats_display_is_one_line() {
    let text = python_functions(12, "log");
    let plan = prepare(&input(&text), &PrepareConfig::default());
    let line = plan.stats.to_string();
    assert!(!line.contains('\n'));
    assert!(line.contains("chunks"));
    let json = serde_json::to_value(&plan).unwrap_or_default();
    assert!(json["stats"]["kept_ranges"].is_array());
    assert!(json["stats"]["elapsed_us"].is_u64());
}

#[test]
fn unnamed_function_cut_by_a_chunk_keeps_its_other_half() {
    // No instruction: the tail chunk (last ~1,000 chars) starts inside a
    // 1,400-character function; the function must come back whole.
    let mut long_fn = String::from("def assemble_monthly_report(ledger, month):\n");
    for i in 0..34 {
        long_fn.push_str(&format!("    part_{i:02} = ledger.sum_for(month, {i})\n"));
    }
    long_fn.push_str("    return combine(part_00, part_33)\n");
    let n = long_fn.chars().count();
    assert!(n > 1300 && n < 1900, "{n}");
    let text = format!("{}{long_fn}", python_functions(14, "early"));
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert!(plan.prompt.contains(long_fn.trim_end()), "{}", plan.prompt);
}

#[test]
fn sql_and_dash_dash_marker() {
    let body: String = (0..60)
        .map(|i| format!("SELECT id, total_{i} FROM ledger_{i} WHERE month = {i};\n"))
        .collect();
    let text = format!("{body}-- REFACTOR: merge the ledger_42 query into a view\n");
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert_eq!(
        plan.instruction.as_deref(),
        Some("-- REFACTOR: merge the ledger_42 query into a view")
    );
    assert!(plan.applied, "{}", plan.stats);
    assert!(plan.prompt.starts_with("-- REFACTOR:"));
    assert!(
        plan.prompt
            .contains("SELECT id, total_42 FROM ledger_42 WHERE month = 42;")
    );
    assert_eq!(plan.language.as_deref(), Some("sql"));
    assert!(plan.prompt.contains("-- … "));
}

#[test]
fn query_without_usable_words_keeps_the_end() {
    // `x` and `1` are too short to be tokens: the tail query is empty.
    let mut text = "x = 1\n".repeat(2000);
    text.push_str("y = 2\n");
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert!(plan.stats.chunks_kept >= 1);
    assert!(plan.prompt.contains("x = 1\ny = 2\n"), "{}", plan.prompt);
}

#[test]
fn blank_code_is_sent_unchanged() {
    let text = format!("{}# TODO: fill this in\n", " \n".repeat(2000));
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(!plan.applied);
    assert!(
        plan.stats
            .skipped_reason
            .as_deref()
            .is_some_and(|r| r.contains("no chunk"))
    );
    assert!(plan.prompt.starts_with("# TODO: fill this in"));
}

#[test]
fn private_and_dunder_names_are_recognised() {
    // A long method with a leading underscore, longer than the growth limit:
    // only recognising its definition keeps it whole.
    let mut method = String::from("    def _wrap_chunks(self, chunks):\n        lines = []\n");
    for i in 0..60 {
        method.push_str(&format!(
            "        width_{i} = self.width - len(chunks[{i}])\n"
        ));
    }
    method.push_str("        return lines\n");
    assert!(method.chars().count() > 2500);
    let text = format!(
        "class TextWrapper:\n    def __init__(self, width):\n        self.width = width\n\n{method}\n{}# INSTRUCTION: make _wrap_chunks handle a tiny width\n",
        python_functions(10, "util")
    );
    let plan = prepare(&input(&text), &PrepareConfig::default());
    assert!(plan.applied, "{}", plan.stats);
    assert!(plan.prompt.contains(method.trim_end()), "{}", plan.prompt);
}
