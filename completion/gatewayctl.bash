# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for gatewayctl(1): verbs, options, and the services, images, jobs, tokens, platforms and nodes that the
# running gatewayd knows (asked with the same gatewayctl, as the user who is typing, so only what
# that user may see is offered). Nothing is offered from the daemon if it cannot be reached.

# Prints the first column (or columns 1 and 2 for images: ID and reference) of a listing.
__gatewayctl_list() {
        local ctl=$1 what=$2
        case $what in
                services) COLUMNS=100000 "$ctl" --no-legend --no-ask-password services 2>/dev/null |
                                  awk '{ print $1 }' ;;
                images)   COLUMNS=100000 "$ctl" --no-legend --no-ask-password images 2>/dev/null |
                                  awk '{ print $1; print $2 }' ;;
                refs)     COLUMNS=100000 "$ctl" --no-legend --no-ask-password images 2>/dev/null |
                                  awk '{ print $2 }' ;;
                jobs)     COLUMNS=100000 "$ctl" --no-legend --no-ask-password jobs 2>/dev/null |
                                  awk '{ print $1 }' ;;
                tokens)   COLUMNS=100000 "$ctl" --no-legend --no-ask-password token list 2>/dev/null |
                                  awk '{ print $1 }' ;;
                platforms) COLUMNS=100000 "$ctl" --no-legend --no-ask-password platforms 2>/dev/null |
                                  awk '{ print $1 }' ;;
                # The nodes of the platform in $3.
                nodes)    COLUMNS=100000 "$ctl" --no-legend --no-ask-password nodes -- "$3" 2>/dev/null |
                                  awk '{ print $2 }' ;;
                clients)  COLUMNS=100000 "$ctl" --no-legend --no-ask-password client list 2>/dev/null |
                                  awk '{ print $1 }' ;;
                labs)     COLUMNS=100000 "$ctl" --no-legend --no-ask-password lab list 2>/dev/null |
                                  awk '{ print $1 }' ;;
                instances) COLUMNS=100000 "$ctl" --no-legend --no-ask-password lab instances 2>/dev/null |
                                  awk '{ print $1 }' ;;
        esac
}

_gatewayctl() {
        local cur prev words cword split
        # bash-completion's idiom: --opt=value is split into prev=--opt, cur=value; ':' in image
        # references does not split words.
        _init_completion -s -n : || return

        local ctl=${words[0]} i w
        local -a args=()
        local general='--help --version --json --json= --no-legend --no-pager --no-ask-password'
        local -A verbs_of=(
                [service]='list show create update rm remove'
                [image]='pull list show rm expire'
                [job]='show rm remove'
                [token]='create list revoke'
                [platform]='list show'
                [node]='drain resume'
                [client]='create list rm'
                [program]='upload list rm run'
                [lab]='put list show rm start instances instance token stop'
        )
        local top='services service pull images image rmi submit jobs job result logs cancel token client program platforms platform nodes node lab status help'
        local valued='@(--image|--command|--env|--unset-env|--description|--memory|--cpus|--timeout|--platform|--credentials-file|--data|--params|--file|-f|--expires-in|--scope|--name|--title|--arg)'

        # The words before the cursor that are not options or their values: the verb (and its
        # sub-verb) and the arguments given so far. After "--" comes the job's command line.
        for (( i = 1; i < cword; i++ )); do
                w=${words[i]}
                [[ $w == -- ]] && return 0
                [[ $w == -* ]] && continue
                # The value of an option given as a separate word (--image REF); -f of logs
                # takes none.
                if [[ ${words[i-1]} == $valued && ! ( ${words[i-1]} == -f && ${args[0]} == logs ) ]]; then
                        continue
                fi
                args+=("$w")
        done

        local verb=${args[0]} sub= nargs
        if [[ -n $verb && -n ${verbs_of[$verb]} ]]; then
                sub=${args[1]}
                nargs=$(( ${#args[@]} - 2 ))
        else
                nargs=$(( ${#args[@]} - 1 ))
        fi
        local key=$verb${sub:+ $sub}

        # Option values.
        case $prev in
                --json)
                        $split && COMPREPLY=( $(compgen -W 'pretty short off' -- "$cur") )
                        $split && return 0 ;;
                --network)
                        $split && COMPREPLY=( $(compgen -W 'yes no' -- "$cur") )
                        $split && return 0 ;;
                --image)
                        COMPREPLY=( $(compgen -W "$(__gatewayctl_list "$ctl" refs)" -- "$cur") )
                        __ltrim_colon_completions "$cur"
                        return 0 ;;
                --file|--data|--params|--credentials-file)
                        _filedir; return 0 ;;
                -f)
                        [[ $verb == service ]] && { _filedir; return 0; } ;;
                --scope)
                        $split && COMPREPLY=( $(compgen -W 'read submit pull' -- "${cur##*,}") )
                        $split && return 0 ;;
                --platform|--env|--unset-env|--command|--description|--memory|--cpus|--timeout|--expires-in|--name|--title|--arg)
                        return 0 ;;
                --entrypoint)
                        _filedir; return 0 ;;
        esac

        if [[ $cur == -* ]]; then
                local opts=$general
                case $key in
                        'service create') opts+=' --image= --command= --env= --description= --memory= --cpus= --timeout= --network --network= --file= -f' ;;
                        'service update') opts+=' --image= --command= --env= --unset-env= --description= --memory= --cpus= --timeout= --network --network= --file= -f' ;;
                        pull|'image pull') opts+=' --platform= --credentials-file= --force --quiet -q' ;;
                        'image show'|rmi|'image rm'|'image expire') opts+=' --platform=' ;;
                        submit)           opts+=' --data= --params= --wait' ;;
                        jobs)             opts+=' --all' ;;
                        logs)             opts+=' --follow -f' ;;
                        'token create')   opts+=' --expires-in= --scope= --quiet -q' ;;
                        'client create')  opts+=' --name= --scope= --quiet -q' ;;
                        'program upload') opts+=' --entrypoint= --title= --arg= --replace --image= --provider=' ;;
                        'program run')    opts+=' --arg= --wait --provider=' ;;
                        'program list'|'program rm') opts+=' --provider=' ;;
                        'lab put')        opts+=' --quiet -q' ;;
                esac
                COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
                [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
                return 0
        fi

        if [[ -z $verb ]]; then
                COMPREPLY=( $(compgen -W "$top" -- "$cur") ); return 0
        fi
        if [[ -n ${verbs_of[$verb]} && ${#args[@]} -eq 1 ]]; then
                COMPREPLY=( $(compgen -W "${verbs_of[$verb]}" -- "$cur") ); return 0
        fi

        local what=
        case $key in
                'service show'|'service update') (( nargs == 0 )) && what=services ;;
                'service rm'|'service remove')   what=services ;;
                submit)                          (( nargs == 0 )) && what=services ;;
                'image show')                    (( nargs == 0 )) && what=images ;;
                rmi|'image rm'|'image expire')   what=images ;;
                pull|'image pull')               (( nargs == 0 )) && what=refs ;;
                'job show'|result|logs)          (( nargs == 0 )) && what=jobs ;;
                'job rm'|'job remove'|cancel)    what=jobs ;;
                'token revoke')                  what=tokens ;;
                'platform show')                 (( nargs == 0 )) && what=platforms ;;
                nodes)                           what=platforms ;;
                'node drain'|'node resume')      (( nargs == 0 )) && what=platforms
                                                 (( nargs == 1 )) && what=nodes ;;
                'client rm')                     what=clients ;;
                'program upload')                (( nargs == 0 )) && { _filedir -d; return 0; } ;;
                'lab show')                      (( nargs == 0 )) && what=labs ;;
                'lab rm')                        what=labs ;;
                'lab put')                       (( nargs == 0 )) && _filedir ;;
                'lab start')                     (( nargs == 0 )) && what=labs ;;
                'lab instance'|'lab token')      (( nargs == 0 )) && what=instances ;;
                'lab stop')                      what=instances ;;
                help)                            (( nargs == 0 )) && COMPREPLY=( $(compgen -W "$top" -- "$cur") ) ;;
        esac
        if [[ -n $what ]]; then
                COMPREPLY=( $(compgen -W "$(__gatewayctl_list "$ctl" "$what" "${args[2]}")" -- "$cur") )
                __ltrim_colon_completions "$cur"
        fi
        return 0
}

complete -F _gatewayctl gatewayctl
