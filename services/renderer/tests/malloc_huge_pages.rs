//! `--malloc-huge-pages`: the renderer runs itself again, same process id,
//! with glibc's huge-page tunable added to the tunables it was given (here
//! `glibc.malloc.arena_max=4`), and serves with its heap advised for huge
//! pages; without the flag nothing is.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a test renderer is asked for huge pages.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Flag,
    Env,
    Not,
}

/// A renderer on loopback ports of its own, with nothing to fetch from.
fn start_renderer(ask: Ask) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgmesh-renderer"));
    command
        .args([
            "--insecure-plaintext",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--fetcher-url",
            "http://127.0.0.1:9",
            "--redis-url",
            "redis://127.0.0.1:9",
        ])
        .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
        .env_remove("IMGMESH_MALLOC_HUGE_PAGES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match ask {
        Ask::Flag => {
            command.arg("--malloc-huge-pages");
        }
        Ask::Env => {
            command.env("IMGMESH_MALLOC_HUGE_PAGES", "true");
        }
        Ask::Not => {}
    }
    command.spawn().expect("starting imgmesh-renderer")
}

/// Whether `child`, once it runs more than one thread (its runtime has
/// started: any exec is behind it), has a mapping advised for huge pages
/// (`hg` among its VmFlags: glibc's main heap with the tunable on).
/// Its /proc environ cannot tell: glibc rewrites GLIBC_TUNABLES there.
fn advises_huge_pages_once_started(child: &mut Child) -> bool {
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        assert!(
            child.try_wait().expect("polling the renderer").is_none(),
            "the renderer exited"
        );
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
        if threads > 1 {
            // Past the runtime's start: its threads' allocations grew the heap.
            std::thread::sleep(Duration::from_millis(200));
            let smaps =
                std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("reading smaps");
            return smaps
                .lines()
                .filter_map(|line| line.strip_prefix("VmFlags:"))
                .any(|flags| flags.split_whitespace().any(|flag| flag == "hg"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the renderer started no thread within 20 s");
}

#[test]
fn huge_pages_are_asked_of_malloc_only_with_the_flag() {
    // glibc advises huge pages only where the kernel gives them on advice.
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !mode.contains("[madvise]") {
        eprintln!("transparent huge pages are not `madvise` here ({mode:?}): nothing to see");
        return;
    }
    for (ask, expected) in [(Ask::Flag, true), (Ask::Env, true), (Ask::Not, false)] {
        let mut child = start_renderer(ask);
        let advised = advises_huge_pages_once_started(&mut child);
        child.kill().expect("stopping the renderer");
        child.wait().expect("reaping the renderer");
        assert_eq!(advised, expected, "{ask:?}");
    }
}
