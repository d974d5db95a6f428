//! Fetching the governance repository into the agent's bare mirror: the transports this build
//! has (local, `file://`, `git://`, smart `http://`; `https`/`ssh` behind features), ssh
//! credentials, and errors an operator can act on. It fetches only; whether what arrived may be
//! applied is [`fn@super::judge`]'s question.

use std::path::Path;

use super::{Config, Refusal};

/// Why a remote cannot be fetched by this build at all (a transport compiled out, a local path
/// that does not exist), in words an operator can act on; `None` when libgit2 should try.
pub fn transport_problem(remote: &str) -> Option<String> {
    let lower = remote.to_ascii_lowercase();
    let scp_like = !remote.contains("://")
        && remote
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') || (host.len() > 1 && !host.contains('/')));
    if lower.starts_with("https://") && !cfg!(feature = "https") {
        return Some(format!(
            "{remote}: this build has no TLS transport; rebuild with `--features https`, or use http:// (integrity does not depend on the transport: every file is verified against the pinned root), git://, or a local mirror"
        ));
    }
    if (lower.starts_with("ssh://") || lower.starts_with("git+ssh://") || scp_like)
        && !cfg!(feature = "ssh")
    {
        return Some(format!(
            "{remote}: this build has no SSH transport; rebuild with `--features ssh`, or use http://, git://, or a local mirror"
        ));
    }
    let local = if let Some(p) = remote.strip_prefix("file://") {
        Some(p)
    } else if !remote.contains("://") && !scp_like {
        Some(remote)
    } else {
        None
    };
    match local {
        Some(p) if !Path::new(p).exists() => Some(format!("{remote}: no repository at this path")),
        _ => None,
    }
}

/// Fetches `cfg.refname` from `cfg.remote` into the bare mirror `mirror` (created if needed);
/// returns the fetched commit.
pub fn fetch(mirror: &Path, cfg: &Config) -> Result<git2::Oid, Refusal> {
    if let Some(why) = transport_problem(&cfg.remote) {
        return Err(Refusal::Unreachable(why));
    }
    let repo = match git2::Repository::open_bare(mirror) {
        Ok(r) => r,
        Err(_) => git2::Repository::init_bare(mirror)
            .map_err(|e| Refusal::Storage(e.message().to_owned()))?,
    };
    let mut remote = repo
        .remote_anonymous(&cfg.remote)
        .map_err(|e| Refusal::Unreachable(e.message().to_owned()))?;
    let spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", cfg.refname);
    let mut callbacks = git2::RemoteCallbacks::new();
    let key = cfg.ssh_key.clone();
    let mut asked = 0;
    callbacks.credentials(move |_url, user, allowed| {
        // libgit2 asks again after a refused credential; stop instead of looping.
        asked += 1;
        if asked > 3 {
            return Err(git2::Error::from_str(
                "the ssh server refused the credentials (check --ssh-key or the ssh agent)",
            ));
        }
        let user = user.unwrap_or("git");
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            match &key {
                Some(k) => git2::Cred::ssh_key(user, None, k, None),
                None => git2::Cred::ssh_key_from_agent(user),
            }
        } else if allowed.contains(git2::CredentialType::USERNAME) {
            git2::Cred::username(user)
        } else {
            Err(git2::Error::from_str(
                "the remote asks for credentials this agent does not hold (it authenticates to ssh remotes with a key only)",
            ))
        }
    });
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(callbacks);
    remote
        .fetch(&[spec.as_str()], Some(&mut options), None)
        .map_err(|e| Refusal::Unreachable(format!("{}: {}", cfg.remote, e.message())))?;
    let r = repo
        .find_reference(&format!("refs/remotes/origin/{}", cfg.refname))
        .map_err(|e| {
            Refusal::Unreachable(format!("no {} on the remote: {}", cfg.refname, e.message()))
        })?;
    r.peel_to_commit()
        .map(|c| c.id())
        .map_err(|e| Refusal::Unreachable(e.message().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::transport_problem;

    #[test]
    fn compiled_out_transports_and_missing_paths_are_named() {
        let https = transport_problem("https://git.example/gov.git");
        assert_eq!(https.is_some(), !cfg!(feature = "https"));
        for ssh in ["ssh://git@host/gov", "git@host:gov.git", "host:gov.git"] {
            let p = transport_problem(ssh);
            assert_eq!(p.is_some(), !cfg!(feature = "ssh"), "{ssh}");
        }
        assert!(transport_problem("/nonexistent/gov").is_some_and(|m| m.contains("no repository")));
        assert!(transport_problem("file:///nonexistent/gov").is_some());
        assert_eq!(transport_problem("."), None);
        assert_eq!(transport_problem("http://127.0.0.1:1/gov"), None);
        assert_eq!(transport_problem("git://127.0.0.1/gov"), None);
    }
}
