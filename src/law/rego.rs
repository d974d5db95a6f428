//! Optional extra rules in Rego (docs/law.md § Rego): the approved `policies/*.rego` files,
//! evaluated by `regorus` with the order, its treaty and the policies as input. The entry point
//! is `data.treaty.deny`, a set of `{"code": "rego-…", "message": …}` objects.
//!
//! Owns the fail-closed reading of a rule's answer: a rule can only add denials; an evaluation
//! error, a time budget overrun, or an answer that is not a set of well-formed denials denies
//! the order `rego-error` (never allows it). The engine is built with no time, random, uuid or
//! network built-ins, so a rule's answer depends on its input alone.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// The time budget of one evaluation unless the operator sets another (`--rego-budget`).
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(5);
/// The most denials a rule may add to one decision.
pub const MAX_DENIALS: usize = 32;
/// The longest code a rule may use (`rego-` included).
pub const MAX_CODE: usize = 64;
/// The rule the law evaluates.
pub const ENTRY: &str = "data.treaty.deny";

/// Why the rules could not be compiled (the law is then not put in force).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: the Rego rules do not compile: {reason}")]
pub struct RegoError {
    pub path: String,
    pub reason: String,
}

/// A denial a rule added (its code starts with `rego-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoDenial {
    pub code: String,
    pub message: String,
}

/// The compiled rules of one law.
pub struct Rules {
    /// The compiled engine; evaluations take a copy from `idle` (or clone this one).
    template: regorus::Engine,
    idle: Mutex<Vec<regorus::Engine>>,
    pub files: Vec<String>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules").field("files", &self.files).finish()
    }
}

impl Clone for Rules {
    fn clone(&self) -> Self {
        Rules {
            template: self.template.clone(),
            idle: Mutex::new(Vec::new()),
            files: self.files.clone(),
        }
    }
}

/// Idle engines kept for reuse (one per thread that evaluates at once, at most).
const MAX_IDLE: usize = 64;

impl Rules {
    /// Compiles `(path, source)` pairs (Rego v1 syntax).
    pub fn compile(sources: &[(String, String)]) -> Result<Rules, RegoError> {
        let mut e = regorus::Engine::new();
        e.set_strict_builtin_errors(true);
        // regorus registers `rand.intn` whenever `std` is on (the features that gate time,
        // uuid, http and the runtime are off): an extension of the same name is looked up
        // first, and fails, so no rule can make a decision depend on chance.
        e.add_extension(
            "rand.intn".into(),
            2,
            Box::new(|_: Vec<regorus::Value>| -> anyhow::Result<regorus::Value> {
                anyhow::bail!("rand.intn is not available: a decision depends on its input alone")
            }),
        )
        .map_err(|err| RegoError {
            path: "rand.intn".into(),
            reason: err.to_string(),
        })?;
        for (path, src) in sources {
            e.add_policy(path.clone(), src.clone())
                .map_err(|err| RegoError {
                    path: path.clone(),
                    reason: crate::text::clip(&err.to_string(), 2_000).to_owned(),
                })?;
        }
        let files = sources.iter().map(|(p, _)| p.clone()).collect();
        Ok(Rules {
            template: e,
            idle: Mutex::new(Vec::new()),
            files,
        })
    }

    /// The denials the rules add for `input` (a JSON document) within `budget`, or why they
    /// cannot be read (then the caller denies `rego-error`).
    pub fn deny(&self, input: &str, budget: Duration) -> Result<Vec<RegoDenial>, String> {
        let mut e = self
            .idle
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| self.template.clone());
        e.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: budget,
            check_interval: NonZeroU32::MIN,
        });
        let result = (|| {
            e.set_input_json(input).map_err(|x| x.to_string())?;
            let v = e.eval_rule(ENTRY.to_owned()).map_err(|x| x.to_string())?;
            v.to_json_str().map_err(|x| x.to_string())
        })();
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(e);
            }
        }
        read_denials(&result?)
    }
}

/// Reads `data.treaty.deny`'s answer (a set, as a JSON array) strictly.
fn read_denials(json: &str) -> Result<Vec<RegoDenial>, String> {
    let v = crate::json::parse_value(json.as_bytes()).map_err(|e| e.to_string())?;
    let items = match &v {
        serde_json::Value::Array(a) => a,
        other => {
            return Err(format!(
                "{ENTRY} is not a set of denials (it is {})",
                kind_of(other)
            ))
        }
    };
    if items.len() > MAX_DENIALS {
        return Err(format!(
            "{ENTRY} has {} denials, more than {MAX_DENIALS}",
            items.len()
        ));
    }
    items
        .iter()
        .map(|d| {
            let obj = d.as_object().ok_or("a denial is not an object {code, message}")?;
            if obj.keys().any(|k| k != "code" && k != "message") {
                return Err("a denial has fields other than code and message".to_owned());
            }
            let code = obj.get("code").and_then(|c| c.as_str()).unwrap_or_default();
            let well_formed = code.len() <= MAX_CODE
                && code
                    .strip_prefix("rego-")
                    .is_some_and(|r| {
                        !r.is_empty()
                            && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    });
            if !well_formed || code == "rego-error" {
                return Err(format!(
                    "a denial's code {:?} is not `rego-` and lower-case letters, digits and dashes (at most {MAX_CODE} bytes; rego-error is the engine's)",
                    crate::text::clip(code, MAX_CODE)
                ));
            }
            let message = obj
                .get("message")
                .and_then(|m| m.as_str())
                .ok_or("a denial has no message string")?;
            Ok(RegoDenial {
                code: code.to_owned(),
                message: message.to_owned(),
            })
        })
        .collect()
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null (undefined)",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(src: &str) -> Result<Rules, RegoError> {
        Rules::compile(&[("policies/extra.rego".into(), src.into())])
    }

    const HEAD: &str = "# spec_version: 1.0\n# version: 1\npackage treaty\n\n";

    #[test]
    fn a_rule_adds_denials_from_its_input_and_the_honest_input_passes() {
        let r = rules(&format!(
            "{HEAD}deny contains {{\"code\": \"rego-night-shift\", \"message\": msg}} if {{\n  input.order.gpu_milli_hours > 1000\n  msg := sprintf(\"%d milli-GPU-hours\", [input.order.gpu_milli_hours])\n}}\n"
        ))
        .expect("compiles");
        let d = r
            .deny(r#"{"order": {"gpu_milli_hours": 1500}}"#, DEFAULT_BUDGET)
            .expect("evaluates");
        assert_eq!(
            d,
            [RegoDenial {
                code: "rego-night-shift".into(),
                message: "1500 milli-GPU-hours".into()
            }]
        );
        assert_eq!(
            r.deny(r#"{"order": {"gpu_milli_hours": 500}}"#, DEFAULT_BUDGET)
                .expect("ok"),
            []
        );
    }

    #[test]
    fn errors_budget_overruns_and_malformed_answers_fail_closed() {
        // Not a compile: refused when the law is compiled.
        assert!(rules(&format!("{HEAD}deny contains x if {{")).is_err());
        // Time, random and uuid built-ins are absent.
        for call in [
            "time.now_ns()",
            "rand.intn(\"x\", 10)",
            "uuid.rfc4122(\"x\")",
        ] {
            let src = format!("{HEAD}deny contains {{\"code\": \"rego-x\", \"message\": \"m\"}} if {{ {call} }}\n");
            let compiled = rules(&src);
            assert!(
                compiled.is_err()
                    || compiled
                        .expect("compiled")
                        .deny("{}", DEFAULT_BUDGET)
                        .is_err(),
                "{call} must not evaluate"
            );
        }
        let rows: &[(&str, &str)] = &[
            ("not a set", "deny := 1"),
            (
                "a bad code",
                "deny contains {\"code\": \"quota\", \"message\": \"m\"}",
            ),
            (
                "the engine's code",
                "deny contains {\"code\": \"rego-error\", \"message\": \"m\"}",
            ),
            (
                "an extra field",
                "deny contains {\"code\": \"rego-a\", \"message\": \"m\", \"allow\": true}",
            ),
            ("no message", "deny contains {\"code\": \"rego-a\"}"),
            (
                "a runtime error",
                "deny contains {\"code\": \"rego-a\", \"message\": m} if { m := 1 / 0 }",
            ),
        ];
        for (name, rule) in rows {
            let r = rules(&format!("{HEAD}{rule}\n")).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                r.deny("{}", DEFAULT_BUDGET).is_err(),
                "{name} must fail closed"
            );
        }
        // A budget overrun: a rule that enumerates far more than the budget allows.
        let r = rules(&format!(
            "{HEAD}deny contains {{\"code\": \"rego-slow\", \"message\": \"m\"}} if {{\n  some i in numbers.range(1, 20000)\n  some j in numbers.range(1, 20000)\n  i + j < 0\n}}\n"
        ))
        .expect("compiles");
        let started = std::time::Instant::now();
        assert!(
            r.deny("{}", Duration::from_millis(20)).is_err(),
            "an overrun must fail closed"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
