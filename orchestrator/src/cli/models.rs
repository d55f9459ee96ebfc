//! `cerebrum models [--json]`: the models the node serves, which are loaded,
//! and how often each has answered.

use std::io::{self, Write};

use cerebrum_shared::cerebrum::ModelsResponse;
use clap::Args;

use super::CliError;
use super::connect::{ServerArgs, runtime};
use super::exit::EXIT_CODES_HELP;
use super::style::{Style, table, thousands};

/// Arguments of `cerebrum models`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ModelsArgs {
    /// Print the server's `/v1/models` object as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The table: one row per model the node can serve.
pub fn render(models: &ModelsResponse, style: Style) -> String {
    if models.available_models.is_empty() {
        return "The inference node serves no models.\n".to_owned();
    }
    let mut rows = vec![vec![
        style.bold("MODEL"),
        style.bold("LOADED"),
        style.bold("ANSWERS"),
    ]];
    for name in &models.available_models {
        let loaded = models.cached_models.contains(name);
        rows.push(vec![
            name.clone(),
            if loaded {
                style.green("yes")
            } else {
                style.dim("no")
            },
            thousands(models.inference_counts.get(name).copied().unwrap_or(0)),
        ]);
    }
    table(&rows)
}

/// Fetches and prints the list.
pub fn run(args: &ModelsArgs) -> Result<(), CliError> {
    let client = args.server.client()?;
    let models = runtime(None)?.block_on(client.models_with_body())?;
    let text = if args.json {
        // The server's object as it sent it.
        let mut s = serde_json::to_string_pretty(&models.body)
            .map_err(|e| CliError::Output(io::Error::other(e)))?;
        s.push('\n');
        s
    } else {
        render(&models.value, Style::stdout())
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn table_lists_models() {
        let m = ModelsResponse::new(
            vec!["qwen_7b".into(), "smollm2".into()],
            vec!["smollm2".into()],
            BTreeMap::from([("smollm2".to_owned(), 1234)]),
            "cerebrum-node",
        );
        assert_eq!(
            render(&m, Style::plain()),
            "MODEL    LOADED  ANSWERS\nqwen_7b  no      0\nsmollm2  yes     1,234\n"
        );
    }

    #[test]
    fn empty_list_says_so() {
        let m = ModelsResponse::new(vec![], vec![], BTreeMap::new(), "n");
        assert!(render(&m, Style::plain()).contains("no models"));
    }
}
