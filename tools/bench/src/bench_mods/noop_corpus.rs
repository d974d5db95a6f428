//! The labelled no-op corpus (issue 13, class 2): what counts as a false positive of the no-op
//! guard, graded on real public histories.
//!
//! The corpus file (`bench/noop-corpus.tsv`) holds no fetched code, only, tab-separated:
//!
//! ```text
//! scope   OWNER/NAME  TIP-COMMIT  N        # judge the N first-parent commits ending at TIP
//! label   OWNER/NAME  COMMIT      noop|real  one-line reason
//! ```
//!
//! A `noop` label says the commit changes nothing any consumer sees (comments, formatting
//! whitespace, a value-preserving reformat); `real` says it changes logic, data or structure
//! (code or string tokens, indentation that is syntax, a number, a directive comment). Grading
//! walks every scoped commit with a classifier: a flagged commit labelled `real` is a false
//! positive, and so is a flagged commit nobody labelled (an unlabelled verdict cannot be taken
//! on trust; label it). The false-positive rate is over every judged commit, as the issue
//! defines it. The repositories are read from a directory of bare mirrors (`OWNER+NAME/repo`
//! or `OWNER+NAME`, as the `fetch` tool lays them out); a missing mirror is an error, never a
//! skipped repository.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::gate::Equivalence;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {why}")]
    Line {
        path: String,
        line: usize,
        why: String,
    },
    #[error("no mirror of {repo} under {dir} (looked for {dir}/{flat}/repo and {dir}/{flat}); fetch it first")]
    MirrorMissing {
        repo: String,
        dir: String,
        flat: String,
    },
    #[error("{repo}: {message}")]
    Git { repo: String, message: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    pub repo: String,
    pub tip: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub noop: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Corpus {
    pub scopes: Vec<Scope>,
    /// (repo, full commit id) → label.
    pub labels: BTreeMap<(String, String), Label>,
}

impl Corpus {
    pub fn read(path: &Path) -> Result<Corpus, CorpusError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Read {
            path: p.clone(),
            source,
        })?;
        Corpus::parse(&p, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Corpus, CorpusError> {
        let mut c = Corpus::default();
        for (n, line) in text.lines().enumerate() {
            let bad = |why: &str| CorpusError::Line {
                path: path.to_owned(),
                line: n + 1,
                why: why.to_owned(),
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let commit_ok = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
            match f.as_slice() {
                ["scope", repo, tip, count] => {
                    if !commit_ok(tip) {
                        return Err(bad("the tip must be a full 40-hex commit id"));
                    }
                    let count = count
                        .parse()
                        .map_err(|_| bad("the count must be a number"))?;
                    c.scopes.push(Scope {
                        repo: (*repo).to_owned(),
                        tip: (*tip).to_owned(),
                        count,
                    });
                }
                ["label", repo, commit, label, reason] => {
                    if !commit_ok(commit) {
                        return Err(bad("the commit must be a full 40-hex commit id"));
                    }
                    let noop = match *label {
                        "noop" => true,
                        "real" => false,
                        _ => return Err(bad("a label is `noop` or `real`")),
                    };
                    if reason.trim().is_empty() {
                        return Err(bad("every label needs a one-line reason"));
                    }
                    let key = ((*repo).to_owned(), (*commit).to_owned());
                    if c.labels.contains_key(&key) {
                        return Err(bad("this commit is labelled twice"));
                    }
                    c.labels.insert(
                        key,
                        Label {
                            noop,
                            reason: (*reason).to_owned(),
                        },
                    );
                }
                _ => {
                    return Err(bad(
                        "expected `scope REPO TIP N` or `label REPO COMMIT noop|real REASON`, tab-separated",
                    ))
                }
            }
        }
        Ok(c)
    }
}

/// One classifier's grade on the corpus.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grade {
    pub judged: usize,
    pub flagged: usize,
    /// Flagged and labelled `noop`.
    pub true_positives: usize,
    /// Flagged and labelled `real`: "repo commit: reason".
    pub false_positives: Vec<String>,
    /// Flagged without a label (counted as false positives until labelled).
    pub unlabelled: Vec<String>,
    /// Labelled `noop` and not flagged.
    pub missed: usize,
}

impl Grade {
    /// False positives, unlabelled flags included, per judged commit.
    pub fn false_positive_rate(&self) -> f64 {
        if self.judged == 0 {
            return 0.0;
        }
        (self.false_positives.len() + self.unlabelled.len()) as f64 / self.judged as f64
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CorpusReport {
    pub repos: Vec<String>,
    pub labels: usize,
    pub baseline: Grade,
    pub guard: Grade,
}

/// Where the mirror of `repo` (`owner/name`) is under `dir`.
pub fn mirror(dir: &Path, repo: &str) -> Result<PathBuf, CorpusError> {
    let flat = repo.replace('/', "+");
    for p in [dir.join(&flat).join("repo"), dir.join(&flat)] {
        if p.is_dir() {
            return Ok(p);
        }
    }
    Err(CorpusError::MirrorMissing {
        repo: repo.to_owned(),
        dir: dir.display().to_string(),
        flat,
    })
}

/// Grades the guard and the baseline on every scoped commit of the mirrors under `mirrors`.
pub fn grade(
    corpus: &Corpus,
    mirrors: &Path,
    baseline: Equivalence,
    guard: Equivalence,
) -> Result<CorpusReport, CorpusError> {
    // Every mirror must be present before any work: a partial run would report a rate over
    // fewer commits than the corpus defines.
    let dirs: Vec<PathBuf> = corpus
        .scopes
        .iter()
        .map(|s| mirror(mirrors, &s.repo))
        .collect::<Result<_, _>>()?;
    let mut report = CorpusReport {
        repos: corpus.scopes.iter().map(|s| s.repo.clone()).collect(),
        labels: corpus.labels.len(),
        baseline: Grade::default(),
        guard: Grade::default(),
    };
    for (scope, dir) in corpus.scopes.iter().zip(dirs) {
        let git = |e: &dyn std::fmt::Display| CorpusError::Git {
            repo: scope.repo.clone(),
            message: e.to_string(),
        };
        let repo = crate::source::Repo::discover(&dir).map_err(|e| git(&e))?;
        let tip = git2::Oid::from_str(&scope.tip).map_err(|e| git(&e))?;
        let mut walk = repo.repo.revwalk().map_err(|e| git(&e))?;
        walk.push(tip).map_err(|e| git(&e))?;
        walk.simplify_first_parent().map_err(|e| git(&e))?;
        let mut judged = 0;
        for id in walk {
            if judged == scope.count {
                break;
            }
            let id = id.map_err(|e| git(&e))?;
            let c = repo.repo.find_commit(id).map_err(|e| git(&e))?;
            let Some(parent) = c.parent_ids().next() else {
                continue;
            };
            judged += 1;
            let key = (scope.repo.clone(), id.to_string());
            let label = corpus.labels.get(&key);
            for (grade, eq) in [(&mut report.baseline, baseline), (&mut report.guard, guard)] {
                grade.judged += 1;
                let flagged =
                    crate::gate::is_noop_with(&repo, parent, id, eq).map_err(|e| git(&e))?;
                let what = || {
                    format!(
                        "{} {} {}",
                        scope.repo,
                        &key.1[..12],
                        c.summary().ok().flatten().unwrap_or("")
                    )
                };
                match (flagged, label) {
                    (true, Some(l)) if l.noop => {
                        grade.flagged += 1;
                        grade.true_positives += 1;
                    }
                    (true, Some(l)) => {
                        grade.flagged += 1;
                        grade
                            .false_positives
                            .push(format!("{} ({})", what(), l.reason));
                    }
                    (true, None) => {
                        grade.flagged += 1;
                        grade.unlabelled.push(what());
                    }
                    (false, Some(l)) if l.noop => grade.missed += 1,
                    (false, _) => {}
                }
            }
        }
        if judged < scope.count {
            return Err(git(&format!(
                "the corpus scopes {} commits from {} but the mirror has only {judged}",
                scope.count, scope.tip
            )));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_corpus_line_is_an_error_with_its_line_number() {
        let good = format!(
            "# c\nscope\ta/b\t{}\t3\nlabel\ta/b\t{}\treal\tcode\n",
            "a".repeat(40),
            "b".repeat(40)
        );
        let c = Corpus::parse("x", &good).unwrap();
        assert_eq!((c.scopes.len(), c.labels.len()), (1, 1));
        for bad in [
            format!("label\ta/b\t{}\tmaybe\twhy\n", "b".repeat(40)),
            format!("label\ta/b\t{}\tnoop\t \n", "b".repeat(40)),
            "label\ta/b\tabc\tnoop\twhy\n".to_owned(),
            format!("{good}label\ta/b\t{}\tnoop\ttwice\n", "b".repeat(40)),
        ] {
            let e = Corpus::parse("x", &bad).unwrap_err().to_string();
            assert!(e.starts_with("x:"), "{e}");
        }
    }

    #[test]
    fn a_missing_mirror_is_an_error_not_a_skipped_repository() {
        let c = Corpus::parse("x", &format!("scope\tno/such\t{}\t1\n", "a".repeat(40))).unwrap();
        let e = grade(
            &c,
            Path::new("/nonexistent"),
            crate::gate::noop::equivalent,
            crate::gate::noop::equivalent,
        )
        .unwrap_err();
        assert!(matches!(e, CorpusError::MirrorMissing { .. }), "{e}");
    }
}
