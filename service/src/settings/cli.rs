//! The flags of a settings table (a clap `Args`) and the settings list of `--help`.

use std::marker::PhantomData;

use super::{FlagValues, LOG_LEVEL, Row, Settings};
use crate::logging::{LOG_FORMAT, RUST_LOG};

/// The settings part of `serve --help`: every setting with its TOML key,
/// environment variable, flag, default and help.
pub fn help(table: &[Row]) -> String {
    let mut out = String::from(
        "Settings: each is read from the TOML file given with --config, then the \
         environment, then the flag; the last one set wins. An empty variable counts as \
         unset. Durations are whole seconds.\n",
    );
    for row in table {
        let s = &row.setting;
        let flag = s.flag.map(|f| format!(", --{f}")).unwrap_or_default();
        out.push_str(&format!(
            "\n  {}, {}{flag}  [default: {}]\n      {}\n",
            s.key,
            s.env,
            row.default,
            row.help()
        ));
    }
    out.push_str(&format!(
        "\n  {LOG_LEVEL} (environment only)  [default: info]\n      \
         Log filter: error, warn, info, debug, trace, or per target (info,tower_http=debug).\n\
         \n  {RUST_LOG} (environment only)\n      \
         The same filter syntax; when set it wins over {LOG_LEVEL}.\n\
         \n  {LOG_FORMAT} (environment only)  [default: text]\n      \
         text, or json for one JSON object a line. Under systemd lines carry no timestamp or colour (the journal adds its own).\n"
    ));
    out
}

/// The flags of a settings table, as a clap `Args` to flatten into a subcommand:
/// one `--flag VALUE` per setting that has one (its help and default from the
/// table), and the settings list as the subcommand's long help.
#[derive(Debug, Clone)]
pub struct SettingFlags<T> {
    values: FlagValues,
    table: PhantomData<fn() -> T>,
}

impl<T> SettingFlags<T> {
    /// The flags given.
    pub fn values(&self) -> &FlagValues {
        &self.values
    }
}

impl<T: Settings> clap::FromArgMatches for SettingFlags<T> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self {
            values: FlagValues::new(),
            table: PhantomData,
        };
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for flag in T::table().iter().filter_map(|row| row.setting.flag) {
            if let Some(v) = matches.get_one::<String>(flag) {
                self.values.insert(flag, v.clone());
            }
        }
        Ok(())
    }
}

impl<T: Settings> clap::Args for SettingFlags<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let table = T::table();
        let mut cmd = cmd.after_long_help(help(&table));
        for row in &table {
            let s = &row.setting;
            if let Some(flag) = s.flag {
                cmd = cmd.arg(
                    clap::Arg::new(flag)
                        .long(flag)
                        .value_name(s.key.to_uppercase())
                        .help(format!(
                            "{} [env: {}] [default: {}]",
                            row.help().trim_end_matches('.'),
                            s.env,
                            row.default
                        )),
                );
            }
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
