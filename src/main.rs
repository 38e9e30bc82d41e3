//! Argument parsing and exit codes; the work is in the library.

use clap::{Args, Parser, Subcommand};

/// Parsing and normalising thousands of documents is allocation-bound: mimalloc cuts the
/// local work of a 5,000-role plan by a third against glibc's allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc by default commits its arenas eagerly and gives freed memory back to the OS
// only after a delay: for a 5,000-role plan that kept the peak RSS near 150 MB for about
// 80 MB of live data. Given back at once and committed on use, the peak is about 100 MB,
// at no measurable cost in time (BENCHMARKS.md, "Real-AWS conditions").
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}
/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in mimalloc.h (v2).
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
use iamplan::aws::Target;
use iamplan::cli::{self, Common, EXIT_ERROR, apply::ApplyArgs, plan::PlanArgs, smoke::SmokeArgs};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "iamplan",
    version,
    about = "Plan and apply AWS IAM from TOML files: roles and trust policies, managed and inline policies, users, groups and access keys; then prove it works"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More output on stderr: -v shows each API write and retry, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Args, Clone)]
struct TargetArgs {
    /// AWS profile for the default account. Without it the standard credential chain
    /// applies as in the AWS CLI: keys in the environment, then AWS_PROFILE's profile.
    #[arg(long)]
    profile: Option<String>,
    /// AWS region (else AWS_REGION or the profile's region).
    #[arg(long)]
    region: Option<String>,
    /// Endpoint for every AWS service, e.g. an emulator (AWS_ENDPOINT_URL also works).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Report API calls by operation and time spent, on stderr.
    #[arg(long)]
    stats: bool,
    /// Take over same-named resources that no stack owns (else they are conflicts).
    #[arg(long)]
    adopt: bool,
    /// Evaluate access-key rotation rules as of this time (RFC 3339, e.g.
    /// 2027-01-01T00:00:00Z): see what a later run will do, or test rotation.
    #[arg(long, value_parser = parse_now)]
    now: Option<i64>,
    /// Deactivate access keys even if they were used recently.
    #[arg(long)]
    force: bool,
    /// The most calls of one IAM API in flight at once, per account. Below it, each API's
    /// concurrency adapts: it grows while calls succeed and halves on throttling.
    #[arg(long, default_value_t = iamplan::aws::limit::DEFAULT_PARALLELISM,
          value_parser = clap::value_parser!(u16).range(1..))]
    parallelism: u16,
}

fn parse_now(s: &str) -> Result<i64, String> {
    iamplan::keys::parse_time(s)
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time, e.g. 2027-01-01T00:00:00Z"))
}

impl TargetArgs {
    fn common(self) -> Common {
        Common {
            target: Target {
                profile: self.profile,
                region: self.region,
                endpoint_url: self.endpoint_url,
                parallelism: usize::from(self.parallelism),
            },
            stats: self.stats,
            adopt: self.adopt,
            now: self.now,
            force: self.force,
            rotate: Default::default(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Compare the plan files with live IAM and show what apply would change.
    Plan {
        /// Plan files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Save the plan; `iamplan apply FILE` applies exactly it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the JSON plan (docs/json-plan.md).
        #[arg(long)]
        json: bool,
        /// Exit 0 for no changes, 2 for changes, 1 for errors.
        #[arg(long)]
        detailed_exitcode: bool,
        /// With --json: list unchanged resources too, with the action "no-op".
        #[arg(long, requires = "json")]
        include_unchanged: bool,
        /// Fail (exit 1, after printing the plan) when a policy document change widens
        /// access and its resource does not say `allow_widening = true`.
        #[arg(long)]
        deny_widening: bool,
    },
    /// Make live IAM match the plan files, or apply a saved plan.
    Apply {
        /// Plan files or directories, or one saved plan (from `plan --out`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Run the plan's smoke checks after a successful apply.
        #[arg(long)]
        smoke: bool,
        /// Apply even though the plan deletes every resource its stack owns.
        #[arg(long)]
        allow_delete_all: bool,
        /// Apply under --now even when the endpoint is not a local emulator.
        #[arg(long)]
        allow_simulated_time: bool,
        /// Apply nothing when a policy document change widens access and its resource
        /// does not say `allow_widening = true`.
        #[arg(long)]
        deny_widening: bool,
    },
    /// Prove the integration works: assume the roles and invoke the functions the plan's
    /// smoke checks name, and compare with what they expect.
    Smoke {
        /// Plan files or directories with [smoke.NAME] checks.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// Print each invoke request as the SDK sent it, signed (secrets redacted).
        #[arg(long)]
        show_request: bool,
    },
    /// Print the plan's outputs, read from live IAM (nothing is changed).
    Output {
        /// Plan files or directories; the last argument names one output when it is not a
        /// file or directory.
        #[arg(required = true, value_name = "FILES... [NAME]")]
        args: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Print as JSON (sensitive values included).
        #[arg(long, conflicts_with = "raw")]
        json: bool,
        /// Print one output's value alone, with no quotes or newline (for pipes).
        #[arg(long)]
        raw: bool,
    },
    /// Check plan files without credentials or network: every error of every file, with
    /// file:line:col (exit 1 if any).
    Validate {
        /// Plan files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Report policies IAM accepts but that are probably wrong or risky (offline; codes in
    /// the README). Exit 1 on an error finding, or on any with --deny-warnings.
    Lint {
        /// Plan files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 on any finding, not only errors (for CI).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Whether the plan's policies allow one request, and which statements decided it
    /// (offline). Exit 0 allowed, 3 denied, 4 unknown, 1 on bad input.
    Explain {
        /// Plan files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The caller: role/NAME, user/NAME, or the ARN of a role or user of the plan.
        #[arg(long)]
        principal: String,
        /// The action, e.g. lambda:InvokeFunction.
        #[arg(long)]
        action: String,
        /// The resource's ARN, or role/NAME or user/NAME of the plan.
        #[arg(long)]
        resource: String,
        /// A request context entry KEY=VALUE, e.g. sts:ExternalId=abc (repeat for more; a
        /// key given twice has two values).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// The account alias the names are in (default: the default account).
        #[arg(long)]
        account: Option<String>,
        /// Print the evaluation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The plan's principals (and the outside ones its trust policies name) that can do an
    /// action on a resource, directly or by assuming the plan's roles, with the path (offline).
    WhoCan {
        /// Plan files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The action, e.g. sts:AssumeRole.
        #[arg(long)]
        action: String,
        /// The resource's ARN, or role/NAME or user/NAME of the plan.
        #[arg(long)]
        resource: String,
        /// A request context entry KEY=VALUE applied to every step (repeat for more).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// The account alias the resource name is in (default: the default account).
        #[arg(long)]
        account: Option<String>,
        /// Print the principals and paths as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write plan files for IAM resources that already exist, to bring them under a stack
    /// (each with `adopt = true`; `plan` then shows only adoptions).
    Export {
        /// The stack the files declare.
        #[arg(long)]
        stack: String,
        /// Directory to write (default: the stack's name).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only these kinds: role, policy, user, group (repeat or comma-separate).
        #[arg(long = "kind", value_delimiter = ',')]
        kinds: Vec<String>,
        /// Only names matching this glob (* and ?, without case; repeat for more).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Only resources under this path, e.g. /integrations/.
        #[arg(long)]
        path: Option<String>,
        /// Only roles and users with this tag, KEY=VALUE (repeat: all must match).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Export what this stack owns instead of what no stack owns.
        #[arg(long)]
        owned_by: Option<String>,
        /// Print the export as JSON instead of writing files.
        #[arg(long, value_parser = ["toml", "json"], default_value = "toml")]
        format: String,
        /// Write the files even when something cannot be represented (it is listed).
        #[arg(long)]
        allow_partial: bool,
        /// Overwrite files that exist in the output directory.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove the stack's lock, whoever holds it: for a lock left by an apply or rotate
    /// that ended on another machine (one of this host that no longer runs is taken over).
    ForceUnlock {
        /// Plan files or directories (they name the stack and its accounts).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Put plan files into the canonical layout, keeping every comment.
    Fmt {
        /// Plan files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; exit 1 and name each file that is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Render a saved plan (from `plan --out`) as text, or as the JSON plan.
    Show {
        /// The saved plan.
        plan: PathBuf,
        /// Print the JSON plan (docs/json-plan.md).
        #[arg(long)]
        json: bool,
    },
    /// List what the stack owns in live IAM, with ARNs, including what the plan files no
    /// longer declare.
    List {
        /// Plan files or directories (they name the stack and its accounts).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue new access keys for users now, whatever their keys' ages; old keys then
    /// retire on the plan's schedule.
    Rotate {
        /// Plan files or directories that declare the users.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A user to rotate (repeat for more).
        #[arg(long = "user", required = true)]
        users: Vec<String>,
        #[command(flatten)]
        target: TargetArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Rotate under --now even when the endpoint is not a local emulator.
        #[arg(long)]
        allow_simulated_time: bool,
    },
}

/// `export`'s selection flags as plain settings.
fn export_selection(
    kinds: Vec<String>,
    names: Vec<String>,
    path: Option<String>,
    tags: Vec<String>,
    owned_by: Option<String>,
) -> anyhow::Result<iamplan::export::Selection> {
    use iamplan::model::Kind;
    let kinds = kinds
        .iter()
        .map(|k| match k.as_str() {
            "role" | "roles" => Ok(Kind::Role),
            "policy" | "policies" => Ok(Kind::ManagedPolicy),
            "user" | "users" => Ok(Kind::User),
            "group" | "groups" => Ok(Kind::Group),
            other => Err(anyhow::anyhow!(
                "--kind {other}: the kinds are role, policy, user and group"
            )),
        })
        .collect::<anyhow::Result<_>>()?;
    let tags = tags
        .iter()
        .map(|t| {
            t.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--tag {t}: give KEY=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(iamplan::export::Selection {
        kinds,
        names,
        path,
        tags,
        owned_by,
    })
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "iamplan=warn,error",
        1 => "iamplan=info,warn",
        2 => "iamplan=debug,info",
        _ => "trace",
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(cli::progress::LogLine::default)
        .with_target(false)
        .with_ansi(iamplan::plan::Style::detect_stderr().color)
        .without_time()
        .init();
}

/// Runs before `main` and before the runtime's first allocation (an ELF initialiser), so
/// that the first arena is made with these options too.
extern "C" fn tune_allocator() {
    // SAFETY: sets two of mimalloc's process-wide options while only one thread exists.
    unsafe {
        mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() {
    // Usage errors exit 1, never 2: `plan --detailed-exitcode` uses 2 for "changes".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plan {
                files,
                target,
                out,
                json,
                detailed_exitcode,
                include_unchanged,
                deny_widening,
            } => {
                cli::plan::run(PlanArgs {
                    files,
                    common: target.common(),
                    out,
                    json,
                    detailed_exitcode,
                    include_unchanged,
                    deny_widening,
                })
                .await
            }
            Command::Apply {
                files,
                target,
                auto_approve,
                smoke,
                allow_delete_all,
                allow_simulated_time,
                deny_widening,
            } => {
                cli::apply::run(ApplyArgs {
                    files,
                    common: target.common(),
                    auto_approve,
                    smoke,
                    allow_delete_all,
                    allow_simulated_time,
                    deny_widening,
                })
                .await
            }
            Command::Smoke {
                files,
                target,
                json,
                show_request,
            } => {
                cli::smoke::run(SmokeArgs {
                    files,
                    common: target.common(),
                    json,
                    show_request,
                })
                .await
            }
            Command::Output {
                args,
                target,
                json,
                raw,
            } => {
                let (files, name) = cli::output::split_name(args);
                cli::output::run(cli::output::OutputArgs {
                    files,
                    name,
                    common: target.common(),
                    json,
                    raw,
                })
                .await
            }
            Command::Lint {
                files,
                json,
                deny_warnings,
            } => cli::lint::run(cli::lint::LintArgs {
                files,
                json,
                deny_warnings,
            }),
            Command::Export {
                stack,
                out,
                kinds,
                names,
                path,
                tags,
                owned_by,
                format,
                allow_partial,
                overwrite,
                target,
            } => match export_selection(kinds, names, path, tags, owned_by) {
                Ok(selection) => {
                    cli::export::run(cli::export::ExportArgs {
                        stack,
                        out,
                        selection,
                        json: format == "json",
                        allow_partial,
                        overwrite,
                        common: target.common(),
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            Command::ForceUnlock { files, target } => {
                cli::unlock::run(cli::unlock::UnlockArgs {
                    files,
                    common: target.common(),
                })
                .await
            }
            Command::Explain {
                files,
                principal,
                action,
                resource,
                context,
                account,
                json,
            } => cli::explain::run(cli::explain::ExplainArgs {
                files,
                principal,
                action,
                resource,
                context,
                account,
                json,
            }),
            Command::WhoCan {
                files,
                action,
                resource,
                context,
                account,
                json,
            } => cli::who_can::run(cli::who_can::WhoCanArgs {
                files,
                action,
                resource,
                context,
                account,
                json,
            }),
            Command::Fmt { files, check } => cli::fmt::run(cli::fmt::FmtArgs { files, check }),
            Command::Validate { files } => {
                cli::validate::run(cli::validate::ValidateArgs { files })
            }
            Command::Show { plan, json } => {
                cli::show::run(cli::show::ShowArgs { plan, json }).await
            }
            Command::List {
                files,
                target,
                json,
            } => {
                cli::list::run(cli::list::ListArgs {
                    files,
                    common: target.common(),
                    json,
                })
                .await
            }
            Command::Rotate {
                files,
                users,
                target,
                auto_approve,
                allow_simulated_time,
            } => {
                let mut common = target.common();
                common.rotate = users.iter().map(|u| u.to_ascii_lowercase()).collect();
                cli::apply::run(ApplyArgs {
                    files,
                    common,
                    auto_approve,
                    smoke: false,
                    allow_delete_all: false,
                    allow_simulated_time,
                    deny_widening: false,
                })
                .await
            }
        }
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            cli::report_error(&e);
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    /// clap checks its own definition (unique names, valid defaults) only when a command
    /// is parsed: check every command here.
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
