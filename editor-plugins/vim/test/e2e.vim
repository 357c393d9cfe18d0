" The Vim setup (ALE + this plugin) against the real server, headless:
"   TUNELENS_BIN=... TUNELENS_MODEL=... TUNELENS_WORKSPACE=<copy of e2e/workspace> \
"   vim -N -u test/vimrc -i NONE -es -S test/e2e.vim
" Asserts that :ALEHover on The Kesh's first bars and :TunelensSimilar name "The Borrowed Jig", that
" :TunelensCompare writes the engraved page (with abcjs) and opens it, that :ALECodeAction
" applies the server's edit to the header, and that :TunelensGenre writes R:.
" Prints lines on Vim's own stdout (-es shows :print there). writefile() to /dev/stdout would
" reopen a redirected log file and overwrite (or truncate) what the shell around wrote.
function! s:Print(lines) abort
  noautocmd new
  call setline(1, a:lines)
  %print
endfunction
let s:out = []
let s:n = 0
let s:failed = 0
function! s:C(name, ok, detail) abort
  let s:n += 1
  if !a:ok
    let s:failed += 1
    call add(s:out, 'FAIL ' . a:name . ': ' . a:detail)
  endif
endfunction
function! s:Finish() abort
  call add(s:out, printf('vim-e2e: %d passed, %d failed', s:n - s:failed, s:failed))
  call s:Print(s:out)
  execute s:failed ? 'cquit 1' : 'qall!'
endfunction
" Waits while callbacks run (:sleep lets Vim read the server's replies).
function! s:Wait(ms, Cond) abort
  let l:end = reltimefloat(reltime()) + a:ms / 1000.0
  while reltimefloat(reltime()) < l:end
    if a:Cond()
      return 1
    endif
    sleep 100m
  endwhile
  return a:Cond()
endfunction

for s:v in ['TUNELENS_BIN', 'TUNELENS_MODEL', 'TUNELENS_WORKSPACE']
  if empty(getenv(s:v))
    call add(s:out, 'vim-e2e: set ' . s:v)
    call s:Print(s:out)
    cquit 2
  endif
endfor
let s:ws = $TUNELENS_WORKSPACE
let s:timeout = empty(getenv('TUNELENS_TIMEOUT_MS')) ? 90000 : str2nr($TUNELENS_TIMEOUT_MS)
call mkdir(s:ws . '/.tunelens', 'p')
let g:tunelens_cmd = [$TUNELENS_BIN, 'lsp']
let g:tunelens_model_dir = $TUNELENS_MODEL
let g:tunelens_device = 'cpu'
let g:tunelens_db_path = s:ws . '/.tunelens/index.sled'
let g:ale_hover_to_preview = 1

execute 'edit ' . s:ws . '/kesh.abc'
call s:C('filetype', &filetype ==# 'abc', &filetype)
call cursor(6, 11)

" Hover through ALE's own command, read from the preview window; the server answers once it
" has indexed the workspace, so ask again until it names the quoting tune.
let s:hover = ''
function! s:HoverText() abort
  silent! pclose
  ALEHover
  sleep 300m
  for l:w in range(1, winnr('$'))
    if getwinvar(l:w, '&previewwindow')
      let s:hover = join(getbufline(winbufnr(l:w), 1, '$'), "\n")
    endif
  endfor
  return stridx(s:hover, 'Borrowed Jig') >= 0
endfunction
call s:Wait(s:timeout, function('s:HoverText'))
call s:C(':ALEHover names the similar passage', stridx(s:hover, 'Borrowed Jig') >= 0, s:hover)
silent! pclose

call cursor(6, 11)
TunelensSimilar
call s:Wait(20000, {-> !empty(getqflist())})
let s:qf = map(getqflist(), {_, it -> bufname(it.bufnr) . ' ' . it.text})
call s:C(':TunelensSimilar fills quickfix with session.abc',
\ !empty(filter(copy(s:qf), {_, t -> t =~# 'session\.abc' && t =~# 'Borrowed Jig'})), string(s:qf))
cclose

" :TunelensCompare writes the server's page to a temp .html file and opens it; the opener here
" (g:tunelens_open_cmd, run as a job) only records the path it was given.
let s:opened = s:ws . '/.tunelens/opened.txt'
let g:tunelens_open_cmd = ['sh', '-c', 'printf %s "$1" > "$0"', s:opened]
call cursor(6, 11)
TunelensCompare
call s:Wait(20000, {-> filereadable(s:opened) && !empty(join(readfile(s:opened)))})
let s:page_path = filereadable(s:opened) ? join(readfile(s:opened), '') : ''
let s:page = filereadable(s:page_path) ? join(readfile(s:page_path), "\n") : ''
call s:C(':TunelensCompare opens a temp .html file',
\ s:page_path =~# '\.html$' && s:page_path ==# get(g:, 'tunelens_last_compare', ''), s:page_path)
call s:C(":TunelensCompare's page holds the report, abcjs and the passages",
\ stridx(s:page, 'id="tunelens-report"') >= 0 && stridx(s:page, 'abcjs') >= 0 && stridx(s:page, 'Borrowed Jig') >= 0,
\ len(s:page) . ' bytes')
unlet g:tunelens_open_cmd

" The server's code action on The Kesh's header through ALE's own :ALECodeAction. ALE asks which
" action to apply with ale#util#Input (input() otherwise); here that answers 1 and keeps ALE's menu.
runtime autoload/ale/util.vim
let s:menu = ''
function! ale#util#Input(message, value, ...) abort
  let s:menu = a:message
  return '1'
endfunction
let s:original = getline(1, '$')
function! s:CodeAction() abort
  call cursor(2, 1)
  ALECodeAction
  return s:Wait(5000, {-> getline(1, '$') !=# s:original})
endfunction
call s:Wait(20000, function('s:CodeAction'))
let s:after = getline(1, '$')
let s:r = filter(range(len(s:after)), {_, i -> s:after[i] =~# '^R:\S'})
let s:rest = copy(s:after)
if len(s:r) == 1
  call remove(s:rest, s:r[0])
endif
" One R: line just before K: (where the server and the plugin put a new field), the label of the action ALE listed,
" and nothing else changed.
call s:C(':ALECodeAction wrote one R: line, the listed label, before K:',
\ len(s:r) == 1 && get(s:after, s:r[0] + 1, '') =~# '^K:' && stridx(s:menu, '1) Set R: ' . s:after[s:r[0]][2:]) >= 0
\ && s:rest ==# s:original, s:menu . ' ' . string(s:after))
silent %delete _
call setline(1, s:original)

let g:tunelens_choose = 1
call cursor(6, 11)
TunelensGenre
call s:Wait(20000, {-> getline(5) =~# '^R:'})
call s:C(':TunelensGenre set R: before K:', getline(5) =~# '^R:\S' && getline(6) ==# 'K:G', string(getline(1, 7)))

call s:Finish()
