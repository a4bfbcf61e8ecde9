//! Chat templates: the Jinja template a model folder ships (tokenizer_config.json's
//! `chat_template`, or chat_template.jinja), rendered with minijinja as transformers renders
//! it (`trim_blocks`, `lstrip_blocks`, Python string methods, `raise_exception`,
//! `strftime_now`), turning a conversation into the prompt text.

use ingot::{Error, Result};
use serde_json::Value;
use std::path::Path;

const OP: &str = "chat_template";

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// "system", "user" or "assistant".
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A compiled chat template with the special tokens it may print.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    pub bos_token: String,
    pub eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

fn tmpl_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(OP, format!("{what}: {e}"))
}

impl ChatTemplate {
    /// Compiles `source`; errors name the line.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_function("strftime_now", |fmt: String| strftime_now(&fmt));
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| tmpl_err("cannot compile the template", e))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The template of a model folder: chat_template.jinja, else tokenizer_config.json's
    /// `chat_template` (a string, or a list of named templates: "default" is used).
    /// `None` when the folder has none.
    pub fn from_folder(dir: &Path) -> Result<Option<ChatTemplate>> {
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: Value = if cfg_path.exists() {
            let text = std::fs::read_to_string(&cfg_path)
                .map_err(|e| Error::io(OP, format!("cannot read {}: {e}", cfg_path.display())))?;
            serde_json::from_str(&text).map_err(|e| tmpl_err(&cfg_path.display().to_string(), e))?
        } else {
            Value::Null
        };
        let jinja = dir.join("chat_template.jinja");
        let source = if jinja.exists() {
            Some(
                std::fs::read_to_string(&jinja)
                    .map_err(|e| Error::io(OP, format!("cannot read {}: {e}", jinja.display())))?,
            )
        } else {
            match cfg.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| list.first())
                    .and_then(|t| t.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            }
        };
        let Some(source) = source else {
            return Ok(None);
        };
        // A special token is a string or an AddedToken object with its "content".
        let token = |k: &str| match cfg.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(o) => o
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            None => String::new(),
        };
        ChatTemplate::new(&source, &token("bos_token"), &token("eos_token")).map(Some)
    }

    /// The prompt text of `messages`; with `add_generation_prompt` it ends where the
    /// assistant's reply starts.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let msgs: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                minijinja::context! { role => m.role.clone(), content => m.content.clone() }
            })
            .collect();
        let t = self
            .env
            .get_template("chat")
            .map_err(|e| tmpl_err("no template", e))?;
        t.render(minijinja::context! {
            messages => msgs,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.clone(),
            eos_token => self.eos_token.clone(),
        })
        .map_err(|e| tmpl_err("cannot render the conversation", e))
    }
}

/// Today's date (UTC) for templates that print it (Llama 3.1's `strftime_now`); supports
/// %d %m %Y %y %b %B %H %M %S %%.
fn strftime_now(fmt: &str) -> std::result::Result<String, minijinja::Error> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(format_time(secs, fmt))
}

/// `fmt` at `secs` seconds after the Unix epoch (UTC).
fn format_time(secs: i64, fmt: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('d') => out += &format!("{d:02}"),
            Some('m') => out += &format!("{m:02}"),
            Some('Y') => out += &y.to_string(),
            Some('y') => out += &format!("{:02}", y % 100),
            Some('b') => out += &MONTHS[(m - 1) as usize][..3],
            Some('B') => out += MONTHS[(m - 1) as usize],
            Some('H') => out += &format!("{:02}", rem / 3600),
            Some('M') => out += &format!("{:02}", rem / 60 % 60),
            Some('S') => out += &format!("{:02}", rem % 60),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_format_like_strftime() {
        // 2024-07-23 12:34:56 UTC
        assert_eq!(
            super::format_time(1_721_738_096, "%d %b %Y %H:%M:%S %B %y %m %%"),
            "23 Jul 2024 12:34:56 July 24 07 %"
        );
        assert_eq!(super::format_time(0, "%Y-%m-%d"), "1970-01-01");
        assert_eq!(super::format_time(951_782_400, "%Y-%m-%d"), "2000-02-29");
    }
}
