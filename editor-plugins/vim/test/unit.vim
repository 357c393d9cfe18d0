" vim -N -u test/vimrc -i NONE -es -S test/unit.vim: the plugin's own logic, no server needed.
" Prints lines on Vim's own stdout (-es shows :print there). writefile() to /dev/stdout would
" reopen a redirected log file and overwrite (or truncate) what the shell around wrote.
function! s:Print(lines) abort
  noautocmd new
  call setline(1, a:lines)
  %print
endfunction
let s:out = []
let s:failed = 0
function! s:Check(name, got, want) abort
  if a:got ==# a:want
    return
  endif
  let s:failed += 1
  call add(s:out, printf('FAIL %s: got %s, want %s', a:name, string(a:got), string(a:want)))
endfunction
let s:n = 0
function! s:C(name, got, want) abort
  let s:n += 1
  call s:Check(a:name, a:got, a:want)
endfunction

let s:file = ['%abc', '', 'X:1', 'T:The Kesh', 'M:6/8', 'K:G', '|:GAG GAB|', '', 'X:2', 'T:Maggie', 'R:hornpipe', 'K:Edor', '|:E2BE dEBE|']
call s:C('insert before K:', tunelens#HeaderEdit(s:file, 6, 'R', 'jig'), [5, 5, 'R:jig'])
call s:C('replace R:', tunelens#HeaderEdit(s:file, 12, 'R', 'reel'), [10, 11, 'R:reel'])
call s:C('above every tune', tunelens#HeaderEdit(s:file, 0, 'R', 'jig'), [])
call s:C('no K:', tunelens#HeaderEdit(['X:1', 'T:x', '', 'a|'], 3, 'R', 'jig'), [])

call s:C('R: scores rhythm', tunelens#LabelSet('R'), 'rhythm')
call s:C('other fields score genre', [tunelens#LabelSet('G'), tunelens#LabelSet('r')], ['genre', 'genre'])

let s:r = {a, b -> {'start': {'line': a, 'character': 0}, 'end': {'line': b, 'character': 0}}}
let s:tunes = [{'title': 'A', 'range': s:r(2, 6)}, {'title': 'B', 'range': s:r(8, 12)}]
call s:C('tune under the cursor', tunelens#TuneAt(s:tunes, 9).title, 'B')
call s:C('outside: the first', tunelens#TuneAt(s:tunes, 0).title, 'A')
call s:C('no tunes', tunelens#TuneAt([], 0), {})

let s:items = tunelens#MatchItems([
\ {'uri': 'file:///tmp/x.abc', 'range': s:r(4, 4), 'title': 'The Kesh', 'score': 0.8123, 'corpus': 'workspace', 'explanation': 'same notes'},
\ {'uri': 'file:///tmp/y.abc', 'range': s:r(0, 1), 'title': v:null, 'score': 0.5, 'collection': v:null}])
call s:C('qf place', [s:items[0].filename, s:items[0].lnum, s:items[0].col], ['/tmp/x.abc', 5, 1])
call s:C('qf text', s:items[0].text, 'The Kesh  0.81  [workspace]  same notes')
call s:C('qf untitled', s:items[1].text, '(untitled)  0.50')

call s:C('opener: default', tunelens#OpenArgv('', '/tmp/p.html'), [has('mac') ? 'open' : 'xdg-open', '/tmp/p.html'])
call s:C('opener: list', tunelens#OpenArgv(['firefox', '--new-tab'], '/tmp/p.html'), ['firefox', '--new-tab', '/tmp/p.html'])
call s:C('opener: string', tunelens#OpenArgv(' firefox  --new-tab ', '/tmp/p.html'), ['firefox', '--new-tab', '/tmp/p.html'])
let s:rec = tempname()
let g:tunelens_open_cmd = ['sh', '-c', 'printf %s "$1" > "$0"', s:rec]
call tunelens#Open('/tmp/page.html')
for s:i in range(50)
  if filereadable(s:rec) && !empty(readfile(s:rec))
    break
  endif
  sleep 100m
endfor
call s:C('open runs the command with the path last', filereadable(s:rec) ? readfile(s:rec) : [], ['/tmp/page.html'])
unlet g:tunelens_open_cmd

let g:tunelens_model_dir = '/m/'
let g:tunelens_window_bars = 8
call s:C('options', tunelens#Options(), {'device': 'auto', 'windowBars': 8, 'genreField': 'R', 'modelDir': '/m'})
call s:C('ALE linter defined', map(ale#linter#GetAll(['abc']), 'v:val.name'), ['tunelens'])
call s:C('commands', [exists(':TunelensSimilar'), exists(':TunelensSearch'), exists(':TunelensGenre'), exists(':TunelensCompare')], [2, 2, 2, 2])

call add(s:out, printf('vim-unit: %d passed, %d failed', s:n - s:failed, s:failed))
call s:Print(s:out)
execute s:failed ? 'cquit 1' : 'qall!'
