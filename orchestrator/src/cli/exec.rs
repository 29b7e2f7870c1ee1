//! The `exec` commands: running code and printing transcripts, listing executions, and reading
//! or following their events (spec §11, §4.9, §7.7).

use std::io::Read;

use serde_json::Value;

use crate::cli::args::{ExecCommand, OutputFormat};
use crate::cli::commands::{Ctx, Show, json_object};
use crate::cli::error::{CliError, Outcome};
use crate::cli::output;
use crate::client::{self, Body, ClientError, Flow};

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
            finish_run(ctx, c.repl(&client::Repl { session_id, input }))
        }
        ExecCommand::RunFile {
            session_id,
            path,
            args,
            env,
        } => {
            let args = args.map(|t| json_object("--args", &t)).transpose()?;
            let env = env.map(|t| json_object("--env", &t)).transpose()?;
            let req = client::RunFile {
                session_id,
                path,
                args,
                env,
            };
            finish_run(ctx, c.run_file(&req))
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
                    let execution: Value = serde_json::from_str(&message.data).unwrap_or_default();
                    Some(format!("{}\n", output::execution_footer(&execution)))
                }
                (OutputFormat::Table, _) => {
                    let event: Value = serde_json::from_str(&message.data).unwrap_or_default();
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
