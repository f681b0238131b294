"""A commit's web link on the forges people use (GitHub, GitLab, Bitbucket), from the remote's URL
as Git has it (https, ssh:// or scp-like): plain functions, no network."""
import re
from urllib.parse import urlsplit

_FORGES = {"github.com": "{base}/commit/{sha}", "gitlab.com": "{base}/-/commit/{sha}",
           "bitbucket.org": "{base}/commits/{sha}"}
_FORGE_ALIASES = {"www.github.com": "github.com", "ssh.github.com": "github.com",
                  "altssh.gitlab.com": "gitlab.com", "www.gitlab.com": "gitlab.com",
                  "altssh.bitbucket.org": "bitbucket.org", "www.bitbucket.org": "bitbucket.org"}


def commit_url(remote_url: str, sha: str) -> str:
    """A web link to ``sha`` on a known forge (https, ssh:// or scp-like remote), else ""."""
    if not remote_url or not sha:
        return ""
    scp = re.match(r"^(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)$", remote_url)
    if "://" in remote_url:
        parts = urlsplit(remote_url)
        host, path = (parts.hostname or "").lower(), parts.path
    elif scp:
        host, path = scp.group(1).lower(), scp.group(2)
    else:
        return ""
    host = _FORGE_ALIASES.get(host, host)
    path = path.strip("/")
    path = path[:-4] if path.endswith(".git") else path
    if host not in _FORGES or path.count("/") < 1:
        return ""
    return _FORGES[host].format(base=f"https://{host}/{path}", sha=sha)


def request_name(kind: str, number: int) -> str:
    """How the forge calls it: GitHub's pull request #12, GitLab's merge request !12."""
    return f"merge request !{number}" if kind == "gitlab" else f"pull request #{number}"


def proposed(c) -> str:
    """A change that lands as a pull request: its link first, then the diff it holds."""
    pr, part = c.pull_request, "" if c.part == "chart" else f" {c.part}"
    verb, mark = "Updated" if pr.updated else "Opened", "!" if pr.kind == "gitlab" else "#"
    lines = [f"{verb} {request_name(pr.kind, pr.number)} to {c.action} `{c.app}`{part} {c.old or 'unpinned'} → {c.new} "
             f"in {c.environment}: {pr.url} (branch `{pr.branch}`). It lands when it is merged; "
             "I will say so here."]
    if pr.superseded:
        lines.append(f"It supersedes {mark}{pr.superseded}, closed with a comment.")
    if c.diff:
        lines.append(f"```\n{c.diff.rstrip()}\n```")
    return "\n".join(lines)


def open_pull_requests(records) -> str:
    """`!pending`'s part for Ferry's open pull requests (``landing.open_requests`` records)."""
    lines = [f"{len(records)} pull/merge request(s) of Ferry's open:"]
    lines += [f"• {request_name(r.get('kind', 'github'), r['number'])} {r['action']} `{r['app']}` {r['old'] or 'unpinned'} → {r['version']} in "
              f"{r['environment']}, asked by {r['requester']}: {r['url']}" for r in records]
    return "\n".join(lines)
