//! Finding the external programs tests run (`s3s-fs`, `redis-server`,
//! `psql`, `node`…), with an error that says how to get them.

use std::path::PathBuf;

use anyhow::Context as _;

/// The path of `name` on `PATH` or in `~/.cargo/bin` (where `cargo install`
/// puts `s3s-fs`); an error saying `make test` installs it otherwise.
pub fn find_tool(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| format!("{name} not found on PATH: `make test` installs it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program every machine has is found; a made-up one is an error
    /// naming it.
    #[test]
    fn finds_installed_tools_only() {
        assert!(find_tool("sh").unwrap().is_file());
        let error = find_tool("imgmesh-no-such-tool").unwrap_err();
        assert!(
            error.to_string().contains("imgmesh-no-such-tool"),
            "{error}"
        );
    }
}
