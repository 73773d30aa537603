#!/usr/bin/env bash
# Make a Python 2.7 virtualenv with Autobahn|Testsuite's wstest in it (it is Python 2 code).
# Python 2.7 comes from Debian bullseye's archive (bookworm no longer ships it), pinned low so
# nothing else is taken from bullseye; virtualenv 20.21 is the last that creates 2.7 envs.
set -euo pipefail
ENV=${AUTOBAHN_ENV:-/tmp/autobahn-py27}
if [[ -x $ENV/bin/wstest ]]; then echo "$ENV/bin/wstest"; exit 0; fi
if ! command -v python2.7 >/dev/null; then
  cat > /etc/apt/sources.list.d/bullseye-python27.sources <<'X'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
  cat > /etc/apt/preferences.d/bullseye-python27 <<'X'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
X
  apt-get update -q >&2
  apt-get install -y -q -t bullseye python2.7 >&2
fi
python3 -m venv "$ENV-tools" >&2
"$ENV-tools/bin/pip" install -q "virtualenv==20.21.1" >&2
"$ENV-tools/bin/virtualenv" -q -p python2.7 "$ENV" >&2
"$ENV/bin/pip" install -q "autobahntestsuite==0.8.2" >&2
echo "$ENV/bin/wstest"
