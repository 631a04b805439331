# bash completion for certsync (installed as /usr/share/bash-completion/completions/certsync)
#
# Commands and each command's options come from certsync itself (`certsync --help`,
# `certsync COMMAND --help`), so they never drift from the option tables; certificate
# names from the [cert NAME] sections of the config (--config, $CERTSYNC_CONFIG, else
# /etc/certsync/certsync.conf); formats and layouts are the lists the help names.

# the commands of `certsync --help`: the indented words under "Commands:" and the
# provider section ("aliyun sign ..." gives "aliyun")
_certsync_commands() {
    "$1" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'
}

# the options of `certsync COMMAND --help` ("  --name VALUE   text", "  -h, --help")
_certsync_options() {
    "$1" "$2" --help 2>/dev/null | sed -n 's/^  \(-[a-z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p'
}

# [cert NAME] of the config in use
_certsync_names() {
    local conf=$1
    [ -n "$conf" ] || conf=${CERTSYNC_CONFIG:-/etc/certsync/certsync.conf}
    [ -r "$conf" ] || return 0
    sed -n 's/^[[:space:]]*\[cert[[:space:]]\{1,\}\([A-Za-z0-9._-]\{1,\}\)[[:space:]]*\].*/\1/p' "$conf"
}

_certsync() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev='' prog=${COMP_WORDS[0]} cmd='' conf='' i w
    [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    # the command is the first word that is no option and no option's value
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        --config) conf=${COMP_WORDS[i + 1]} && ((i++)) ;;
        --config=*) conf=${w#--config=} ;;
        -*) ;;
        *) [ -n "$cmd" ] || cmd=$w ;;
        esac
    done
    conf=${conf/#\~/$HOME}

    case $prev in
    --config | --cert | --key | --chain | --password-file | --key-password-file | \
        --passin-file | --secret-file | --body-file | --security-token-file)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    --out | --webroot)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return
        ;;
    --format)
        mapfile -t COMPREPLY < <(compgen -W "pem pfx jks nginx apache tomcat iis" -- "$cur")
        return
        ;;
    --layout)
        mapfile -t COMPREPLY < <(compgen -W "nginx apache tomcat iis jks" -- "$cur")
        return
        ;;
    --profile)
        mapfile -t COMPREPLY < <(compgen -W "modern legacy" -- "$cur")
        return
        ;;
    --validate)
        mapfile -t COMPREPLY < <(compgen -W "file dns" -- "$cur")
        return
        ;;
    --into | --name)
        mapfile -t COMPREPLY < <(compgen -W "$(_certsync_names "$conf")" -- "$cur")
        return
        ;;
    --product)
        # certsync resources --product: the products `certsync resources --help` names
        [ "$cmd" = resources ] && mapfile -t COMPREPLY < <(compgen -W "cdn dcdn slb clb alb nlb \
            ga waf oss ddos live vod apigateway fc mse sae cr webhosting tencentcdn tencentclb \
            tencentwaf huaweicdn awscloudfront awsclb awsalb awsnlb" -- "$cur")
        return
        ;;
    --cloud)
        mapfile -t COMPREPLY < <(compgen -W "Tencent Huawei Aws" -- "$cur")
        return
        ;;
    esac

    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "--config --version --help" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_certsync_commands "$prog") help" -- "$cur")
        fi
        return
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_certsync_options "$prog" "$cmd")" -- "$cur")
        return
    fi
    case $cmd in
    # the commands that take managed certificates' names
    sync | status | import | rollback | upload)
        mapfile -t COMPREPLY < <(compgen -W "$(_certsync_names "$conf")" -- "$cur")
        ;;
    help)
        mapfile -t COMPREPLY < <(compgen -W "$(_certsync_commands "$prog")" -- "$cur")
        ;;
    aliyun)
        mapfile -t COMPREPLY < <(compgen -W "sign endpoint" -- "$cur")
        ;;
    deployment)
        mapfile -t COMPREPLY < <(compgen -W "cancel delete rollback" -- "$cur")
        ;;
    esac
}

complete -F _certsync certsync
