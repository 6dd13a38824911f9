"""The read-only allowlist: each program's read-only options (from its --help on Debian, long lists from getopt).

`known` strings hold each program's other long options, as its getopt_long reports them; `why` names what the
dangerous ones do, for the reason shown to the user. Programs whose options are too wide are not listed at all.
"""

from __future__ import annotations

from aiventbus.core.shell_analysis.options import OptionSpec, spec

WRITES = "writes a file"
RUNS = "runs a program"
CODE = "runs the program it is given"
CHANGES = "changes the system"
FOLLOWS = "waits for more input forever"
LISTS = "reads the files named in another file"
REMOTE = "runs a command on another machine or container"
CONFIG = "loads a file that steers the program"

_SUMS = spec(
    "-btz --binary --text --tag --zero --ignore-missing --quiet --status --strict --warn --help --version",
    why={"-c": LISTS, "--check": LISTS},
)

# fmt: off
OPTIONS: dict[str, OptionSpec] = {
    "ls": spec(
        "-aAbBcCdDfFgGhHiklLmnNoqQrRsStuUvxXZ1 -I: -T: -w: --all --almost-all --author --block-size= "
        "--classify[=] --color[=] --context --dereference --dereference-command-line "
        "--dereference-command-line-symlink-to-dir --directory --dired --escape --file-type --format= --full-time "
        "--group-directories-first --help --hide= --hide-control-chars --human-readable --hyperlink[=] --ignore= "
        "--ignore-backups --indicator-style= --inode --kibibytes --literal --no-group --numeric-uid-gid "
        "--quote-name --quoting-style= --recursive --reverse --show-control-chars --si --size --sort= --tabsize= "
        "--time= --time-style= --version --width= --zero -p"
    ),
    "cat": spec(
        "-AbeEnstTuv --help --number --number-nonblank --show-all --show-ends --show-nonprinting --show-tabs "
        "--squeeze-blank --version"
    ),
    "head": spec(
        "-qvz -c: -n: --bytes= --lines= --quiet --silent --verbose --zero-terminated --help --version", numeric=True
    ),
    "tail": spec(
        "-qvz -c: -n: --bytes= --lines= --quiet --silent --verbose --zero-terminated --help --version",
        known="max-unchanged-stats pid sleep-interval",
        why={"-f": FOLLOWS, "-F": FOLLOWS, "--follow": FOLLOWS, "--retry": FOLLOWS, "-s": FOLLOWS},
        numeric=True,
    ),
    "wc": spec("-cmlLw --bytes --chars --lines --max-line-length --words --debug --help --version",
               why={"--files0-from": LISTS}),
    "grep": spec(
        "-EFGPiwxzsvVbnHhoqaIrRLlcTZU -e: -f: -m: -d: -B: -A: -C: --after-context= --basic-regexp "
        "--before-context= --binary --binary-files= --byte-offset --color[=] --colour[=] --context= --count "
        "--dereference-recursive --directories= --exclude= --exclude-dir= --exclude-from= --extended-regexp "
        "--file= --files-with-matches --files-without-match --fixed-strings --group-separator= --help "
        "--ignore-case --include= --initial-tab --invert-match --label= --line-buffered --line-number "
        "--line-regexp --max-count= --no-filename --no-group-separator --no-ignore-case --no-messages --null "
        "--null-data --only-matching --perl-regexp --quiet --recursive --regexp= --silent --text --version "
        "--with-filename --word-regexp",
        known="fixed-regexp unix-byte-offsets",
        why={"-D": "reads devices and fifos, which may never end", "--devices": "reads devices and fifos"},
        numeric=True,
    ),
    "stat": spec("-Lft -c: --cached= --dereference --file-system --format= --printf= --terse --help --version"),
    "du": spec(
        "-0abcDHhkLlmPSsx -B: -d: -t: -X: --all --apparent-size --block-size= --bytes --count-links --dereference "
        "--dereference-args --exclude= --exclude-from= --human-readable --inodes --max-depth= --no-dereference "
        "--null --one-file-system --separate-dirs --si --summarize --threshold= --time[=] --time-style= --total "
        "--help --version",
        why={"--files0-from": LISTS},
    ),
    "df": spec(
        "-ahHiklPTv -B: -t: -x: --all --block-size= --exclude-type= --human-readable --inodes --local --no-sync "
        "--output[=] --portability --print-type --si --total --type= --help --version",
        why={"--sync": "flushes every file system first"},
    ),
    "cut": spec(
        "-nsz -b: -c: -d: -f: --bytes= --characters= --complement --delimiter= --fields= --only-delimited "
        "--output-delimiter= --zero-terminated --help --version"
    ),
    "tr": spec("-cCdst --complement --delete --squeeze-repeats --truncate-set1 --help --version"),
    "nl": spec(
        "-p -b: -d: -f: -h: -i: -l: -n: -s: -v: -w: --body-numbering= --footer-numbering= --header-numbering= "
        "--join-blank-lines= --line-increment= --no-renumber --number-format= --number-separator= --number-width= "
        "--section-delimiter= --starting-line-number= --help --version"
    ),
    "tac": spec("-br -s: --before --regex --separator= --help --version"),
    "rev": spec("-hV --help --version"),
    "comm": spec("-123z --check-order --nocheck-order --output-delimiter= --total --zero-terminated --help --version"),
    "diff": spec(
        "-qsenyptTrNiEZbwBadvcu -W: -F: -x: -X: -S: -I: -D: -C: -U: --brief --color[=] --context[=] --ed "
        "--exclude= --exclude-from= --expand-tabs --from-file= --horizon-lines= --ifdef= --ignore-all-space "
        "--ignore-blank-lines --ignore-case --ignore-file-name-case --ignore-matching-lines= --ignore-space-change "
        "--ignore-tab-expansion --ignore-trailing-space --initial-tab --label= --left-column --minimal --new-file "
        "--no-dereference --no-ignore-file-name-case --normal --palette= --rcs --recursive --report-identical-files "
        "--show-c-function --show-function-line= --side-by-side --speed-large-files --starting-file= "
        "--strip-trailing-cr --suppress-blank-empty --suppress-common-lines --tabsize= --text --to-file= "
        "--unidirectional-new-file --unified[=] --width= --help --version",
        known="binary changed-group-format forward-ed inhibit-hunk-merge "
              "line-format new-group-format new-line-format old-group-format old-line-format sdiff-merge-assist "
              "unchanged-group-format unchanged-line-format",
        why={"-l": RUNS + " (pr)", "--paginate": RUNS + " (pr)"},
        numeric=True,
    ),
    "cmp": spec("-blsv -i: -n: --bytes= --ignore-initial= --print-bytes --quiet --silent --verbose --help --version",
                known="print-chars"),
    "md5sum": _SUMS, "sha1sum": _SUMS, "sha224sum": _SUMS, "sha256sum": _SUMS, "sha384sum": _SUMS,
    "sha512sum": _SUMS,
    "b2sum": spec("-btz -l: --binary --text --tag --zero --length= --ignore-missing --quiet --status --strict "
                  "--warn --help --version", why={"-c": LISTS, "--check": LISTS}),
    "cksum": spec("-z -a: -l: --algorithm= --debug --length= --tag --untagged --zero --ignore-missing --quiet "
                  "--status --strict --warn --help --version", why={"-c": LISTS, "--check": LISTS}),
    "base64": spec("-di -w: --decode --ignore-garbage --wrap= --help --version"),
    "column": spec(
        "-tdeLJxhV -n: -O: -N: -l: -E: -H: -R: -T: -W: -r: -i: -p: -c: -o: -s: --columns= --fillrows --json "
        "--keep-empty-lines --output-separator= --output-width= --separator= --table --table-columns= "
        "--table-columns-limit= --table-empty-lines --table-header-repeat --table-hide= --table-name= "
        "--table-noextreme= --table-noheadings --table-order= --table-right= --table-truncate= --table-wrap= "
        "--tree= --tree-id= --tree-parent= --help --version"
    ),
    "od": spec(
        "-vabcdfilosx -A: -j: -N: -t: -S: -w:: --address-radix= --endian= --format= --output-duplicates "
        "--read-bytes= --skip-bytes= --strings[=] --traditional --width[=] --help --version"
    ),
    "hexdump": spec(
        "-bcCdoxvhV -e: -f: -n: -s: -L:: --canonical --color[=] --format= --format-file= --length= --no-squeezing "
        "--one-byte-char --one-byte-octal --skip= --two-bytes-decimal --two-bytes-hex --two-bytes-octal "
        "--help --version"
    ),
    "strings": spec(
        "-adfowhv -n: -t: -T: -e: -U: -s: --all --bytes= --data --encoding= --include-all-whitespace "
        "--output-separator= --print-file-name --radix= --target= --unicode= --help --version",
        numeric=True,
    ),
    "fold": spec("-bs -w: --bytes --spaces --width= --help --version", numeric=True),
    "expand": spec("-i -t: --initial --tabs= --help --version", numeric=True),
    "unexpand": spec("-a -t: --all --first-only --tabs= --help --version", numeric=True),
    "paste": spec("-sz -d: --delimiters= --serial --zero-terminated --help --version"),
    "join": spec("-iz -a: -e: -j: -o: -t: -v: -1: -2: --check-order --header --ignore-case --nocheck-order "
                 "--zero-terminated --help --version"),
    "sort": spec(
        "-bdfgiMhnRrVcCmsuz -k: -S: -t: --batch-size= --buffer-size= --check[=] --debug --dictionary-order "
        "--field-separator= --general-numeric-sort --human-numeric-sort --ignore-case --ignore-leading-blanks "
        "--ignore-nonprinting --key= --merge --month-sort --numeric-sort --parallel= --random-sort --reverse "
        "--sort= --stable --unique --version-sort --zero-terminated --help --version",
        why={"-o": WRITES, "--output": WRITES, "--compress-program": CODE, "-T": WRITES + " (temporaries)",
             "--temporary-directory": WRITES + " (temporaries)", "--files0-from": LISTS,
             "--random-source": "reads a file of random bytes, which may never end"},
    ),
    "uniq": spec(
        "-cdDiuz -f: -s: -w: --all-repeated[=] --check-chars= --count --group[=] --ignore-case --repeated "
        "--skip-chars= --skip-fields= --unique --zero-terminated --help --version"
    ),
    "basename": spec("-az -s: --multiple --suffix= --zero --help --version"),
    "dirname": spec("-z --zero --help --version"),
    "realpath": spec("-emLPqsz --canonicalize-existing --canonicalize-missing --logical --no-symlinks --physical "
                     "--quiet --relative-base= --relative-to= --strip --zero --help --version"),
    "readlink": spec("-femnqsvz --canonicalize --canonicalize-existing --canonicalize-missing --no-newline --quiet "
                     "--silent --verbose --zero --help --version"),
    "seq": spec("-w -f: -s: --equal-width --format= --separator= --help --version"),
    "pwd": spec("-LP --help --version"),
    "whoami": spec("--help --version"),
    "users": spec("--help --version"),
    "groups": spec("--help --version"),
    "tty": spec("-s --quiet --silent --help --version"),
    "arch": spec("--help --version"),
    "nproc": spec("--all --ignore= --help --version"),
    "id": spec("-aZgGnruz --context --group --groups --name --real --user --zero --help --version"),
    "uname": spec("-asnrvmpio --all --hardware-platform --kernel-name --kernel-release --kernel-version --machine "
                  "--nodename --operating-system --processor --release --sysname --help --version"),
    "uptime": spec("-phsV --pretty --since --help --version"),
    "free": spec(
        "-bkmghltvwV --bytes --committed --gibi --giga --human --kibi --kilo --lohi --mebi --mega --pebi --peta "
        "--si --tebi --tera --total --wide --help --version",
        why={"-s": "repeats forever", "--seconds": "repeats forever", "-c": "repeats", "--count": "repeats"},
    ),
    "who": spec("-abdHlmpqrstTwu --all --boot --count --dead --heading --ips --login --lookup --mesg --message "
                "--process --runlevel --short --time --users --writable --help --version"),
    "w": spec("-husfoiV --from --ip-addr --no-current --no-header --old-style --short --help --version"),
    "last": spec(
        "-adFiRwxhV -f: -n: -s: -t: -p: --dns --file= --fullnames --fulltimes --hostlast --ip --limit= "
        "--nohostname --present= --since= --system --time-format= --until= --help --version",
        numeric=True,
    ),
    "lastlog": spec("-h -b: -t: -u: --before= --time= --user= --help",
                    why={"-C": CHANGES, "--clear": CHANGES, "-S": CHANGES, "--set": CHANGES, "-R": CONFIG,
                         "--root": CONFIG}),
    "lsblk": spec(
        "-ADJMOPSabdfilmnprstyzhV -E: -I: -e: -o: -w: -x: -T:: --all --ascii --bytes --dedup= --discard "
        "--exclude= --fs --include= --inverse --json --list --merge --nodeps --noempty --noheadings --output= "
        "--output-all --pairs --paths --perms --raw --scsi --shell --sort= --topology --tree[=] --width= --zoned "
        "--help --version",
        why={"--sysroot": CONFIG},
    ),
    "lscpu": spec("-abBcJxyhV -C:: -e:: -p:: --all --bytes --caches[=] --extended[=] --hex --json --offline "
                  "--online --output-all --parse[=] --physical --help --version", why={"-s": CONFIG,
                                                                                       "--sysroot": CONFIG}),
    "findmnt": spec(
        "-smkAabCcDefiJlnPRrUuvyxhV -d: -O: -o: -S: -T: -M: -t: --all --ascii --bytes --canonicalize --df "
        "--direction= --evaluate --first-only --fstab --invert --json --kernel --list --mountpoint= --mtab "
        "--nocanonicalize --nofsroot --noheadings --notruncate --options= --output= --output-all --pairs --pseudo "
        "--raw --real --shadowed --shell --source= --submounts --target= --tree --types= --uniq --verbose "
        "--verify --vfs-all --help --version",
        why={"-p": FOLLOWS, "--poll": FOLLOWS, "-F": CONFIG, "--tab-file": CONFIG, "-N": CONFIG, "--task": CONFIG},
        known="timeout",
    ),
    "pgrep": spec(
        "-lavwcfinoxAhV -d: -g: -G: -O: -P: -s: -t: -u: -U: -r: --cgroup= --count --delimiter= --euid= --exact "
        "--full --group= --ignore-ancestors --ignore-case --inverse --lightweight --list-full --list-name "
        "--newest --ns= --nslist= --older= --oldest --parent= --pgroup= --runstates= --session= --terminal= "
        "--uid= --help --version",
        known="echo logpidfile pidfile queue signal",
    ),
    "vmstat": spec("-afmnsdDwtyhV -p: -S: --active --disk --disk-sum --forks --no-first --one-header --partition= "
                   "--slabs --stats --timestamp --unit= --wide --help --version"),
    "getent": spec("-AiV -s: --no-addrconfig --no-idn --service= --help --usage --version", known="program-name"),
    "locale": spec("-amckvV --all-locales --category-name --charmaps --keyword-name --verbose --help --usage "
                   "--version", known="program-name"),
    "date": spec(
        "-Ru -d: -f: -r: -I:: --date= --debug --file= --iso-8601[=] --reference= --resolution --rfc-2822 "
        "--rfc-3339= --rfc-822 --rfc-email --uct --universal --utc --help --version",
        why={"-s": "sets the clock", "--set": "sets the clock"},
    ),
    "dmesg": spec(
        "-HJkPprSuxdeTthV -f: -l: -s: -L:: --buffer-size= --color[=] --ctime --decode --facility= --force-prefix "
        "--human --json --kernel --level= --noescape --nopager --notime --raw --reltime --show-delta --since= "
        "--syslog --time-format= --until= --userspace --help --version",
        why={"-C": "clears the kernel log", "--clear": "clears the kernel log", "-c": "clears the kernel log",
             "--read-clear": "clears the kernel log", "-D": CHANGES, "--console-off": CHANGES, "-E": CHANGES,
             "--console-on": CHANGES, "-n": CHANGES, "--console-level": CHANGES, "-w": FOLLOWS,
             "--follow": FOLLOWS, "-W": FOLLOWS, "--follow-new": FOLLOWS, "-F": CONFIG, "--file": CONFIG},
    ),
    "journalctl": spec(
        "-mkrxaqNl -S: -U: -c: -b:: -u: -t: -p: -g: -o: -n:: -F: --system --user --merge --since= --until= "
        "--cursor= --after-cursor= --boot[=] --unit= --user-unit= --identifier= --priority= --facility= --grep= "
        "--case-sensitive[=] --dmesg --output= --output-fields= --lines[=] --reverse --show-cursor --utc "
        "--catalog --no-hostname --no-full --full --all --quiet --no-pager --fields --field= --list-boots "
        "--disk-usage --header --list-catalog --dump-catalog --this-boot --help --version",
        known="new-id128 namespace image interval verify-key force pager-end no-tail verify",
        why={"--vacuum-size": "deletes journal files", "--vacuum-time": "deletes journal files",
             "--vacuum-files": "deletes journal files", "--rotate": CHANGES, "--flush": CHANGES, "--sync": CHANGES,
             "--relinquish-var": CHANGES, "--smart-relinquish-var": CHANGES, "--setup-keys": WRITES,
             "--update-catalog": WRITES, "--cursor-file": WRITES, "-f": FOLLOWS, "--follow": FOLLOWS,
             "-M": REMOTE, "--machine": REMOTE, "-D": CONFIG, "--directory": CONFIG, "--file": CONFIG,
             "--root": CONFIG},
        numeric=True,
    ),
    "ss": spec(
        "-hVnraloempTisbZz460tMSudwxHO -f: -A: --all --bpf --cgroup --context --contexts --dccp --extended "
        "--family= --info --inet-sockopt --ipv4 --ipv6 --listening --memory --mptcp --no-header --numeric "
        "--oneline --options --packet --processes --query= --raw --resolve --sctp --socket= --summary --tcp "
        "--threads --tipc --tipcinfo --tos --udp --unix --vsock --xdp --help --version",
        why={"-K": "closes sockets", "--kill": "closes sockets", "-E": FOLLOWS, "--events": FOLLOWS,
             "-D": WRITES, "--diag": WRITES, "-F": CONFIG, "--filter": CONFIG, "-N": CHANGES, "--net": CHANGES},
    ),
    "netstat": spec(
        "-rigsMvWnNepolaCZ46tuwxF -A: --all --cache --context --extend --fib --groups --interfaces --listening "
        "--masquerade --numeric --numeric-hosts --numeric-ports --numeric-users --programs --protocol= --route "
        "--statistics --symbolic --timers --verbose --wide --tcp --udp --udplite --raw --unix --help --version",
        known="ax25 bluetooth ddp ip l2cap netrom rfcomm rose sctp tcpip x25",
        why={"-c": "repeats forever", "--continuous": "repeats forever"},
    ),
    "lsof": spec("-ablnPRtwUVh -i:: -s:: -F:: -p: -u: -c: -d: -g:: -T::", abbreviations=False,
                 why={"-r": "repeats forever", "-D": WRITES + " (device cache)"}),
    "hostname": spec(
        "-aAdfiIsyV --alias --all-fqdns --all-ip-addresses --domain --fqdn --ip-address --long --nis --short --yp "
        "--help --version",
        why={"-b": "sets the host name", "--boot": "sets the host name", "-F": "sets the host name from a file",
             "--file": "sets the host name from a file"},
    ),
    "printenv": spec("-0 --null --help --version"),
    "file": spec(
        "-bikLhnN0rsdlv -e: -F: --apple --brief --debug --dereference --exclude= --exclude-quiet= --extension "
        "--keep-going --list --mime --mime-encoding --mime-type --no-buffer --no-dereference --no-pad --print0 "
        "--raw --separator= --special-files --help --version",
        known="checking-printout parameter",
        why={"-C": WRITES + " (a compiled magic file)", "--compile": WRITES + " (a compiled magic file)",
             "-m": CONFIG + " (a magic file)", "--magic-file": CONFIG + " (a magic file)",
             "-p": "changes the files' access times", "--preserve-date": "changes the files' access times",
             "-z": RUNS + " (decompressors)", "-Z": RUNS + " (decompressors)", "--uncompress": RUNS,
             "--uncompress-noreport": RUNS, "-S": "turns off its sandbox", "--no-sandbox": "turns off its sandbox",
             "-f": LISTS, "--files-from": LISTS},
    ),
    "jq": spec(
        "-nrjascCMSeRh --null-input --raw-input --slurp --compact-output --tab --indent= --color-output "
        "--monochrome-output --ascii-output --unbuffered --sort-keys --raw-output --raw-output0 --join-output "
        "--exit-status --seq --stream --stream-errors --arg== --argjson== --slurpfile== --rawfile== --args "
        "--jsonargs --help --version",
        abbreviations=False,
        why={"-L": CONFIG + " (jq modules)", "-f": CONFIG + " (a jq program)", "--from-file": CONFIG,
             "--run-tests": CONFIG},
    ),
    "timedatectl": spec("-a -p: --all --property= --value --no-pager --no-ask-password --help --version",
                        why={"--monitor": FOLLOWS, "-H": REMOTE, "--host": REMOTE, "-M": REMOTE,
                             "--machine": REMOTE, "--adjust-system-clock": CHANGES}),
    "hostnamectl": spec("--static --transient --pretty --json= --no-ask-password --help --version",
                        why={"-H": REMOTE, "--host": REMOTE, "-M": REMOTE, "--machine": REMOTE}),
    "systemctl": spec(
        "-alqr -t: -p: -P: -n: -o: --all --full --quiet --recursive --type= --property= --value --lines= "
        "--output= --state= --failed --plain --no-pager --no-legend --legend= --show-types --system --user "
        "--reverse --after --before --with-dependencies --timestamp= --help --version",
        known="boot-loader-entry boot-loader-menu check-inhibitors dry-run fail firmware-setup force global "
              "ignore-dependencies ignore-inhibitors irreversible job-mode kill-whom marked message mkdir "
              "no-ask-password no-block no-reload no-wall now preset-mode read-only reboot-argument runtime "
              "show-transaction signal wait what image",
        why={"-H": REMOTE, "--host": REMOTE, "-M": REMOTE, "--machine": REMOTE, "--root": CONFIG},
    ),
    "which": spec("-as", abbreviations=False),
    "whereis": spec("-bmsulg -B: -M: -S: -f", abbreviations=False),
    "type": spec("-afptP", abbreviations=False),
    "sleep": spec("--help --version"),
    "mount": spec("-lhV --show-labels --help --version"),
    "cd": spec("-LPe@", abbreviations=False),
}
# fmt: on
OPTIONS["egrep"] = OPTIONS["fgrep"] = OPTIONS["grep"]  # Debian's egrep/fgrep: `exec grep -E|-F "$@"`
# Programs whose arguments are all data (printed, compared or ignored), never options that change anything.
LITERAL_ARGS = frozenset({"echo", "true", "false", ":", "test", "[", "printf"})
# Options that bound a read of an endless device (/dev/zero, /dev/urandom): head -c 16 /dev/urandom ends.
BOUNDED_BY: dict[str, frozenset[str]] = {
    "head": frozenset({"-c", "--bytes"}),
    "od": frozenset({"-N", "--read-bytes"}),
    "hexdump": frozenset({"-n", "--length"}),
    "cmp": frozenset({"-n", "--bytes"}),
}
