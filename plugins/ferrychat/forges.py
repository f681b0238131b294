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
