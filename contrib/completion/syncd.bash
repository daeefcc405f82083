# bash completion for syncd
#
# Install: copy to ~/.local/share/bash-completion/completions/syncd
# (or source it from ~/.bashrc). Pair and account names are read from the
# config file (-c PATH, else $XDG_CONFIG_HOME/syncd/config.yaml).

_syncd_config_names() {
    # $1: "pairs" or "accounts"; the keys one level below that top-level key
    local cfg="$2"
    [[ -r "$cfg" ]] || return 0
    awk -v want="$1" '
        /^[^ #][^:]*:/ { section = $0; sub(/:.*/, "", section); next }
        section == want && /^  [^ #][^:]*:/ { name = $0; sub(/^  /, "", name); sub(/:.*/, "", name); print name }
    ' "$cfg"
}

_syncd() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
        prev="${COMP_WORDS[COMP_CWORD-1]}"
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="sync run check discover status conflicts convert"
    local global_opts="-c --config -v --verbose --version -h --help"
    local cfg="${XDG_CONFIG_HOME:-$HOME/.config}/syncd/config.yaml"
    local command="" i
    for ((i = 1; i < cword; i++)); do
        case "${words[i]}" in
            -c|--config) cfg="${words[i+1]/#\~/$HOME}"; ((i++)) ;;
            --config=*) cfg="${words[i]#--config=}" ;;
            -*) ;;
            *) command="${words[i]}"; break ;;
        esac
    done

    case "$prev" in
        -c|--config|--previous|-o|--output-dir)
            COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
        --to) COMPREPLY=($(compgen -W "jscal ical" -- "$cur")); return ;;
        --jscalendar) COMPREPLY=($(compgen -W "rfc8984 jscalendarbis" -- "$cur")); return ;;
        --timeout) return ;;
    esac

    case "$command" in
        "")
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            fi ;;
        sync)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--dry-run --force-delete --allow-account-change --no-daemon -h --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_syncd_config_names pairs "$cfg")" -- "$cur"))
            fi ;;
        discover)
            COMPREPLY=($(compgen -W "$(_syncd_config_names accounts "$cfg") -h --help" -- "$cur")) ;;
        status) COMPREPLY=($(compgen -W "--json -h --help" -- "$cur")) ;;
        check) COMPREPLY=($(compgen -W "--timeout -h --help" -- "$cur")) ;;
        conflicts) COMPREPLY=($(compgen -W "list show -h --help" -- "$cur")) ;;
        convert)
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--to -o --output-dir --upload --jscalendar --previous -h --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -X '!*.@(ics|json)' -- "$cur") $(compgen -d -- "$cur"))
                compopt -o filenames 2>/dev/null
            fi ;;
        run) COMPREPLY=($(compgen -W "-h --help" -- "$cur")) ;;
    esac
}

complete -F _syncd syncd
