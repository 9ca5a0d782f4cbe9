# debugtrace shell integration for zsh. In ~/.zshrc:
#
#     eval "$(debugtrace shell-init zsh)"
#
# While a session started in this shell is open (DEBUGTRACE_SESSION is set: `debugtrace start`
# sets it, `debugtrace stop` unsets it), each command line is recorded when it ends, with
# `debugtrace record`: its text, exit status, duration and directory (not its output), then the
# working tree's change. Outside a session the hooks only test one variable.
# Details: docs/shell.md.

typeset -g __debugtrace_bin=@DEBUGTRACE_BIN@
typeset -gi __debugtrace_gen=0      # bumped whenever this shell starts or stops a session
typeset -gi __debugtrace_cmd_gen=0  # ... its value when the current command line started
typeset -g __debugtrace_cmd='' __debugtrace_cwd='' __debugtrace_t0='' __debugtrace_warned=''
zmodload zsh/datetime 2>/dev/null  # $EPOCHREALTIME

# `debugtrace` on PATH (as typed), else the program that printed this snippet.
function __debugtrace_run {
  if (( ${+commands[debugtrace]} )); then command debugtrace "$@"; else "$__debugtrace_bin" "$@"; fi
}

# The command itself; `start` and `stop` also tell this shell whether it is recording.
function debugtrace {
  emulate -L zsh
  local arg sub='' target='' skip='' out id
  integer rc
  for arg in "$@"; do
    if [[ -n $skip ]]; then skip=''; continue; fi
    case $arg in
      (--database-url) skip=1 ;;
      (-*) ;;
      (*) if [[ -z $sub ]]; then sub=$arg; else target=$arg; break; fi ;;
    esac
  done
  case $sub in
    (start)
      out=$(__debugtrace_run "$@")
      rc=$?
      [[ -z $out ]] || print -r -- "$out"
      id=${out##*$'\n'}
      if (( rc == 0 )) && [[ $id =~ '^[A-Za-z0-9._:-]+$' ]]; then
        export DEBUGTRACE_SESSION=$id
        (( __debugtrace_gen++ ))
      fi
      return rc ;;
    (stop)
      # Without an ID: this shell's session, wherever you are (else the current repository's).
      if [[ -z $target && -n ${DEBUGTRACE_SESSION-} ]]; then
        __debugtrace_run "$@" "$DEBUGTRACE_SESSION"
      else
        __debugtrace_run "$@"
      fi
      rc=$?
      # 0: stopped; 1: stopped but finalize failed, or it was not open any more.
      if (( rc <= 1 )) && [[ -z $target || $target == ${DEBUGTRACE_SESSION-} ]]; then
        unset DEBUGTRACE_SESSION
        (( __debugtrace_gen++ ))
      fi
      return rc ;;
    (*) __debugtrace_run "$@" ;;
  esac
}

function __debugtrace_preexec {  # $1: the command line as typed
  [[ -n ${DEBUGTRACE_SESSION-} ]] || return 0
  __debugtrace_cmd=$1 __debugtrace_cwd=$PWD __debugtrace_cmd_gen=$__debugtrace_gen
  __debugtrace_t0=${EPOCHREALTIME:-none}
}

function __debugtrace_precmd {
  integer rc=$?
  [[ -n $__debugtrace_t0 ]] || return rc
  emulate -L zsh
  local line=$__debugtrace_cmd t0=$__debugtrace_t0 err
  local own='(^|[;&|(])[[:space:]]*(command[[:space:]]+)?debugtrace([[:space:]]|$)'
  local plugin='(^|[[:space:]])--debugtrace([[:space:]]|[-=]|$)'
  local -a duration
  integer us code
  __debugtrace_t0=''
  [[ -n ${DEBUGTRACE_SESSION-} ]] && (( __debugtrace_cmd_gen == __debugtrace_gen )) || return rc
  [[ $line == *[^[:space:]]* ]] || return rc
  # Lines kept out of the history are kept out of the trace too.
  [[ -o histignorespace && $line == [[:space:]]* ]] && return rc
  (( ${+HISTORY_IGNORE} )) && [[ $line == ${~HISTORY_IGNORE} ]] && return rc
  # Lines that record themselves: `debugtrace ...` (exec, note, diff; the others are not part of
  # the debugging) and `pytest --debugtrace...` (the pytest plugin).
  [[ $line =~ $own || $line =~ $plugin ]] && return rc
  if [[ $t0 != none && -n ${EPOCHREALTIME-} ]]; then
    (( us = (EPOCHREALTIME - t0) * 1000000 ))
    (( us >= 0 )) || us=0
    duration=(--duration "$(( us / 1000000 )).${(l:6::0:)$(( us % 1000000 ))}")
  fi
  err=$(__debugtrace_run record --quiet --exit-code $rc $duration --cwd "$__debugtrace_cwd" \
    "$DEBUGTRACE_SESSION" -- "$line" 2>&1 >/dev/null)
  code=$?
  if (( code == 3 )); then
    print -ru2 -- "debugtrace: trace $DEBUGTRACE_SESSION is not open any more; this shell stopped recording"
    unset DEBUGTRACE_SESSION
    (( __debugtrace_gen++ ))
  elif (( code != 0 )) && [[ -z $__debugtrace_warned ]]; then
    __debugtrace_warned=1
    print -ru2 -- "debugtrace: could not record the last command (exit $code): ${err:-?}"
    print -ru2 -- "debugtrace: (later failures in this shell are not reported)"
  fi
  return rc
}

autoload -Uz add-zsh-hook
add-zsh-hook preexec __debugtrace_preexec
add-zsh-hook precmd __debugtrace_precmd
