# debugtrace shell integration for bash (4.4 or later). In ~/.bashrc, after any prompt tool:
#
#     eval "$(debugtrace shell-init bash)"
#
# While a session started in this shell is open (DEBUGTRACE_SESSION is set: `debugtrace start`
# sets it, `debugtrace stop` unsets it), each command line is recorded when it ends, with
# `debugtrace record`: its text, exit status, duration and directory (not its output), then the
# working tree's change. Outside a session nothing runs at the prompt: the hook is in
# PROMPT_COMMAND only while this shell records. Details: docs/shell.md.
if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then

__debugtrace_bin=@DEBUGTRACE_BIN@
__debugtrace_gen=0            # bumped whenever this shell starts or stops a session
__debugtrace_prompt_gen=0     # ... its value when the last prompt was drawn
__debugtrace_prompt_pwd=$PWD  # the directory the next command starts in
__debugtrace_t0=              # set through PS0 when a command line starts (microseconds)
__debugtrace_warned=
if [[ -n ${EPOCHREALTIME-} ]]; then
  __debugtrace_ps0='${__debugtrace_void[__debugtrace_t0=${EPOCHREALTIME//[!0-9]/}]-}'
else
  __debugtrace_ps0='${__debugtrace_void[__debugtrace_t0=SECONDS*1000000]-}'
fi

# `debugtrace` on PATH (as typed), else the program that printed this snippet.
function __debugtrace_run {
  if type -P debugtrace >/dev/null; then command debugtrace "$@"; else "$__debugtrace_bin" "$@"; fi
}

# The command itself; `start` and `stop` also tell this shell whether it is recording.
function debugtrace {
  local arg sub= target= skip= out id rc
  for arg in "$@"; do
    if [[ -n $skip ]]; then skip=; continue; fi
    case $arg in
      --database-url) skip=1 ;;
      -*) ;;
      *) if [[ -z $sub ]]; then sub=$arg; else target=$arg; break; fi ;;
    esac
  done
  case $sub in
    start)
      out=$(__debugtrace_run "$@")
      rc=$?
      [[ -z $out ]] || printf '%s\n' "$out"
      id=${out##*$'\n'}
      if ((rc == 0)) && [[ $id =~ ^[A-Za-z0-9._:-]+$ ]]; then
        export DEBUGTRACE_SESSION=$id
        __debugtrace_gen=$((__debugtrace_gen + 1))
        __debugtrace_install
      fi
      return "$rc" ;;
    stop)
      # Without an ID: this shell's session, wherever you are (else the current repository's).
      if [[ -z $target && -n ${DEBUGTRACE_SESSION-} ]]; then
        __debugtrace_run "$@" "$DEBUGTRACE_SESSION"
      else
        __debugtrace_run "$@"
      fi
      rc=$?
      # 0: stopped; 1: stopped but finalize failed, or it was not open any more.
      if ((rc <= 1)) && [[ -z $target || $target == "${DEBUGTRACE_SESSION-}" ]]; then
        unset DEBUGTRACE_SESSION
        __debugtrace_gen=$((__debugtrace_gen + 1))
      fi
      return "$rc" ;;
    *) __debugtrace_run "$@" ;;
  esac
}

# First in PROMPT_COMMAND while recording (it sees the command's $? and hands it on unchanged);
# it takes itself out when the session ends.
function __debugtrace_install {
  [[ "${PROMPT_COMMAND[*]-}" == *__debugtrace_precmd* ]] ||
    PROMPT_COMMAND=$'__debugtrace_precmd\n'${PROMPT_COMMAND-}
}

function __debugtrace_precmd {
  local rc=$?
  if [[ -n ${__debugtrace_t0-} ]]; then
    [[ -z ${DEBUGTRACE_SESSION-} ]] || __debugtrace_record "$rc"
    __debugtrace_t0=
  fi
  if [[ -n ${DEBUGTRACE_SESSION-} ]]; then
    __debugtrace_arm
  else
    __debugtrace_disarm
  fi
  return "$rc"
}

# While recording: PS0 stamps each command's start, and every line reaches the history list, so
# `history 1` is the line that just ran (a line bash would have kept out of the history is then
# deleted from it here, and not recorded).
function __debugtrace_arm {
  [[ ${PS0-} == *__debugtrace_t0* ]] || PS0+=$__debugtrace_ps0
  __debugtrace_prompt_pwd=$PWD
  __debugtrace_prompt_gen=$__debugtrace_gen
  if [[ -z ${__debugtrace_hc+x} ]]; then
    __debugtrace_hc_user=${HISTCONTROL-} __debugtrace_hi_user=${HISTIGNORE-}
    local hc=:${HISTCONTROL-}:
    hc=${hc//:ignoreboth:/:ignoredups:}
    hc=${hc//:ignorespace:/:}
    hc=${hc#:} && hc=${hc%:}
    HISTCONTROL=$hc HISTIGNORE=
    __debugtrace_hc=$hc
  fi
}

function __debugtrace_disarm {
  if [[ -n ${__debugtrace_hc+x} ]]; then
    [[ ${HISTCONTROL-} != "$__debugtrace_hc" ]] || HISTCONTROL=$__debugtrace_hc_user
    [[ -n ${HISTIGNORE-} ]] || HISTIGNORE=$__debugtrace_hi_user
    unset __debugtrace_hc __debugtrace_hc_user __debugtrace_hi_user
  fi
  PROMPT_COMMAND=${PROMPT_COMMAND//__debugtrace_precmd$'\n'/}
  [[ -z ${PS0+x} ]] || PS0=${PS0//"$__debugtrace_ps0"/}
}

function __debugtrace_hidden {  # $1: the line; whether the user's settings keep it from history
  local rest=$__debugtrace_hi_user pat
  if [[ $1 == [[:space:]]* ]]; then
    [[ :$__debugtrace_hc_user: == *:ignorespace:* || :$__debugtrace_hc_user: == *:ignoreboth:* ]] &&
      return 0
  fi
  while [[ -n $rest ]]; do  # HISTIGNORE: colon-separated patterns, each matching a whole line
    pat=${rest%%:*}
    if [[ $rest == *:* ]]; then rest=${rest#*:}; else rest=; fi
    # shellcheck disable=SC2053  # $pat is a pattern, as bash matches HISTIGNORE
    [[ -n $pat && $pat != "&" && $1 == $pat ]] && return 0
  done
  return 1
}

function __debugtrace_record {  # $1: the exit status of the command line that just ended
  local entry line now us dur err code
  local own='(^|[;&|(])[[:space:]]*(command[[:space:]]+)?debugtrace([[:space:]]|$)'
  local plugin='(^|[[:space:]])--debugtrace([[:space:]]|[-=]|$)'
  [[ :$SHELLOPTS: == *:history:* && -n ${__debugtrace_hc+x} ]] || return 0
  ((__debugtrace_gen == __debugtrace_prompt_gen)) || return 0  # it started or stopped a session
  entry=$(HISTTIMEFORMAT='' builtin history 1)
  [[ $entry =~ ^\ *([0-9]+)[*\ ]\ (.*)$ ]] || return 0
  line=${BASH_REMATCH[2]}
  if __debugtrace_hidden "$line"; then
    builtin history -d "${BASH_REMATCH[1]}"
    return 0
  fi
  [[ $line == *[![:space:]]* ]] || return 0
  # Lines that record themselves: `debugtrace ...` (exec, note, diff; the others are not part of
  # the debugging) and `pytest --debugtrace...` (the pytest plugin).
  [[ $line =~ $own || $line =~ $plugin ]] && return 0
  if [[ -n ${EPOCHREALTIME-} ]]; then now=${EPOCHREALTIME//[!0-9]/}; else now=$((SECONDS * 1000000)); fi
  us=$((now - __debugtrace_t0))
  ((us >= 0)) || us=0
  printf -v dur '%d.%06d' $((us / 1000000)) $((us % 1000000))
  err=$(__debugtrace_run record --quiet --exit-code "$1" --duration "$dur" \
    --cwd "$__debugtrace_prompt_pwd" "$DEBUGTRACE_SESSION" -- "$line" 2>&1 >/dev/null)
  code=$?
  if ((code == 3)); then
    printf 'debugtrace: trace %s is not open any more; this shell stopped recording\n' \
      "$DEBUGTRACE_SESSION" >&2
    unset DEBUGTRACE_SESSION
    __debugtrace_gen=$((__debugtrace_gen + 1))
  elif ((code != 0)) && [[ -z $__debugtrace_warned ]]; then
    __debugtrace_warned=1
    printf 'debugtrace: could not record the last command (exit %s): %s\n' "$code" "${err:-?}" >&2
    printf 'debugtrace: (later failures in this shell are not reported)\n' >&2
  fi
  return 0
}

# A shell started inside a session (it inherits DEBUGTRACE_SESSION) records into it too.
[[ -z ${DEBUGTRACE_SESSION-} ]] || __debugtrace_install

else
  printf 'debugtrace: shell integration needs bash 4.4 or later (this is %s)\n' "$BASH_VERSION" >&2
fi
