//! The `exec` commands: running code and printing transcripts, listing executions, and reading
//! or following their events (spec §11, §4.9, §7.7).

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use serde_json::Value;

use crate::cli::args::{ExecCommand, OutputFormat};
use crate::cli::commands::{Ctx, Show, json_object};
use crate::cli::error::{CliError, Outcome};
use crate::cli::output;
use crate::client::{self, Body, ClientError, Flow, parse_json};

pub(crate) fn exec(ctx: &Ctx, command: ExecCommand) -> Result<Outcome, CliError> {
    let c = &ctx.client;
    match command {
        ExecCommand::Repl { session_id, code } => {
            let input = if code == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .lock()
                    .read_to_string(&mut text)
                    .map_err(|err| {
                        anyhow::Error::new(err).context("failed to read code from stdin")
                    })?;
                text
            } else {
                code
            };
            let mine = Mine::Repl(input.clone());
            let answer = until_interrupted(ctx, &session_id, &mine, || {
                c.repl(&client::Repl {
                    session_id: session_id.clone(),
                    input,
                })
            });
            finish_run(ctx, answer)
        }
        ExecCommand::RunFile {
            session_id,
            path,
            args,
            env,
        } => {
            let args = args.map(|t| json_object("--args", &t)).transpose()?;
            let env = env.map(|t| json_object("--env", &t)).transpose()?;
            let mine = Mine::RunFile(path.clone());
            let req = client::RunFile {
                session_id: session_id.clone(),
                path,
                args,
                env,
            };
            let answer = until_interrupted(ctx, &session_id, &mine, || c.run_file(&req));
            finish_run(ctx, answer)
        }
        ExecCommand::List { session_id, limit } => ctx.print(
            &c.list_executions(&session_id, limit)?,
            Show::Table(&output::EXECUTIONS),
        ),
        ExecCommand::Get { execution_id } => {
            print_execution(ctx, &c.get_execution(&execution_id)?)?;
            Ok(Outcome::Success)
        }
        ExecCommand::Cancel { execution_id } => {
            print_execution(ctx, &c.cancel_execution(&execution_id)?)?;
            Ok(Outcome::Success)
        }
        ExecCommand::Events {
            execution_id,
            after_seq,
            limit,
            follow,
        } => {
            if follow {
                follow_events(ctx, &execution_id, after_seq)
            } else {
                ctx.print(
                    &c.list_events(&execution_id, after_seq, limit)?,
                    Show::Table(&output::EVENTS),
                )
            }
        }
    }
}

/// The execution a `repl` or `run-file` command started, as `GET /executions` shows it.
enum Mine {
    Repl(String),
    RunFile(String),
}

impl Mine {
    fn is(&self, execution: &Value) -> bool {
        execution["status"] == "running"
            && match self {
                Mine::Repl(input) => {
                    execution["kind"] == "repl" && execution["input"].as_str() == Some(input)
                }
                Mine::RunFile(path) => {
                    execution["kind"] == "run_file" && execution["path"].as_str() == Some(path)
                }
            }
    }
}

/// Set by the first Ctrl-C (SIGINT) while a run waits for its answer.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C: leave at once, as an interrupted program does.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Runs `call` (a `repl` or `run-file` request) while watching for Ctrl-C. The first Ctrl-C
/// cancels the execution the call started (`POST …/cancel`), and the call then answers with the
/// cancelled execution, which is printed like any other; a second one exits at once (130).
/// Without this a Ctrl-C would leave the execution running and the session busy until a limit
/// stopped it.
fn until_interrupted(
    ctx: &Ctx,
    session_id: &str,
    mine: &Mine,
    call: impl FnOnce() -> Result<Body, ClientError> + Send,
) -> Result<Body, ClientError> {
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    let installed =
        unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    if installed == libc::SIG_ERR {
        return call();
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let _ = tx.send(call());
        });
        let mut cancelled = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(answer) => return answer,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ClientError::Protocol(
                        "the request ended without an answer".into(),
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if !cancelled && INTERRUPTED.load(Ordering::SeqCst) {
                cancelled = cancel_mine(ctx, session_id, mine);
            }
        }
    })
}

/// Cancels the running execution that is `mine`; `false` while none is running yet.
fn cancel_mine(ctx: &Ctx, session_id: &str, mine: &Mine) -> bool {
    let Ok(list) = ctx.client.list_executions(session_id, Some(20)) else {
        return false;
    };
    let running = list
        .value
        .as_array()
        .and_then(|items| items.iter().find(|e| mine.is(e)))
        .and_then(|e| e["id"].as_str().map(str::to_string));
    let Some(id) = running else {
        return false;
    };
    eprintln!("cancelling execution {id} (Ctrl-C again to quit at once)");
    // A failure (it ended meanwhile) changes nothing: the run's answer is on its way.
    let _ = ctx.client.cancel_execution(&id);
    true
}

/// Prints an ExecutionDetail: the body in json mode, the transcript in table mode.
fn print_execution(ctx: &Ctx, body: &Body) -> Result<(), CliError> {
    let text = match ctx.output {
        OutputFormat::Json => output::json_line(&body.raw),
        OutputFormat::Table => output::transcript(&body.value),
    };
    output::emit(&text)?;
    Ok(())
}

/// The end of `exec repl` / `run-file`: exit 2 unless `ok`, and `422 OUTPUT_LIMIT_EXCEEDED`
/// printed as the stored execution.
fn finish_run(ctx: &Ctx, answer: Result<Body, ClientError>) -> Result<Outcome, CliError> {
    let body = match answer {
        Ok(body) => body,
        Err(ClientError::Api(failure)) if failure.code == "OUTPUT_LIMIT_EXCEEDED" => {
            let Some(execution_id) = failure.details["execution_id"].as_str() else {
                return Err(ClientError::Api(failure).into());
            };
            let body = ctx.client.get_execution(execution_id)?;
            print_execution(ctx, &body)?;
            return Ok(Outcome::ExecutionNotOk);
        }
        Err(err) => return Err(err.into()),
    };
    print_execution(ctx, &body)?;
    if body.value["status"] == "ok" {
        Ok(Outcome::Success)
    } else {
        Ok(Outcome::ExecutionNotOk)
    }
}

/// `exec events --follow`: prints events as the stream delivers them, and stops at `end`.
fn follow_events(
    ctx: &Ctx,
    execution_id: &str,
    after_seq: Option<i64>,
) -> Result<Outcome, CliError> {
    // The table's header waits for the stream's first message: a request that fails prints only
    // its error.
    let mut header = ctx.output == OutputFormat::Table;
    let mut write_error = None;
    let result = ctx
        .client
        .follow_events(execution_id, after_seq, |message| {
            if std::mem::take(&mut header)
                && let Err(err) = output::emit(&follow_row(&["SEQ", "TS", "TYPE", "PAYLOAD"]))
            {
                write_error = Some(err);
                return Ok(Flow::Stop);
            }
            let text = match (ctx.output, message.event.as_str()) {
                (OutputFormat::Json, "end") => None,
                (OutputFormat::Json, _) => Some(output::json_line(&message.data)),
                (OutputFormat::Table, "end") => {
                    let execution = parse_json(&message.data).unwrap_or_default();
                    Some(format!("{}\n", output::execution_footer(&execution)))
                }
                (OutputFormat::Table, _) => {
                    let event = parse_json(&message.data).unwrap_or_default();
                    Some(follow_row(&[
                        &output::cell(&event["seq"]),
                        &output::cell(&event["ts"]),
                        &output::cell(&event["type"]),
                        &event["payload"].to_string(),
                    ]))
                }
            };
            if let Some(text) = text
                && let Err(err) = output::emit(&text)
            {
                write_error = Some(err);
                return Ok(Flow::Stop);
            }
            Ok(if message.event == "end" {
                Flow::Stop
            } else {
                Flow::Continue
            })
        });
    if let Some(err) = write_error {
        return Err(err.into());
    }
    result?;
    Ok(Outcome::Success)
}

/// A row of the streamed events table; widths are fixed since rows print as they arrive.
fn follow_row(cells: &[&str; 4]) -> String {
    format!(
        "{:<6}  {:<24}  {:<10}  {}\n",
        cells[0], cells[1], cells[2], cells[3]
    )
}
