"""演示的中文解说（The demos' narration in Chinese）。"""

MESSAGES: dict[str, str] = {
    "usage": "用法：python -m suite.demo [--lang en|zh] 演示名",
    "summary.echo": "TCP 回显服务同时服务多个客户端，以及 UDP 回显",
    "summary.chat": "三个用户聊天：昵称、消息、/me、历史消息、/msg 私聊、聊天室、伪造的一行、/quit",
    "summary.upload": "文件上传中途断开、断点续传、sha256 校验，再下载回来",
    "yes": "是",
    "no": "否",
    "sees": "{who:>6} 看到 | {line}",
    "sends": "{who:>6} 发送 | {line}",
    # chat
    "chat.server": (
        "聊天服务器监听 {address}。TCP 是字节流，没有消息边界（会出现粘包/拆包），"
        "所以每条消息就是一行，以换行符结尾。不用登录：用户直接连上就行。"
    ),
    "chat.alice_arrives": (
        "alice 连上服务器：服务器给她一个临时昵称（guest），把她放进 lobby 聊天室；"
        "她用 /nick alice 把昵称改成 alice。"
    ),
    "chat.bob_arrives": "bob 用同样的方式连上，这时 alice 已经在聊天室里：她看到 bob 进来并改了昵称。",
    "chat.alice_talks": "alice 输入一行：聊天室里的每个人都收到这条消息，带着她的昵称；alice 自己也收到（这就是确认）。",
    "chat.bob_acts": "bob 用 /me 做一个动作。",
    "chat.carol_arrives": "carol 连上并设置昵称：聊天室最近的消息作为历史消息重放给她。",
    "chat.private": "alice 用 /msg 给 carol 发私聊：bob 完全看不到。",
    "chat.rooms": "bob 用 /join 换到 games 聊天室；carol 用 /who 查看还有谁在。",
    "chat.forge": "alice 想伪造一行：一个回车符、一条冒充 admin 的假消息，再加一个能清空终端的转义序列。",
    "chat.forge_result": "每个控制字符都变成了 \ufffd：所有内容都留在 alice 自己的那一行里，没有人看到来自 admin 的一行。",
    "chat.quit": "alice 用 /quit lunch time 离开；carol 会被告知原因。然后 bob 和 carol 断开连接。",
    "chat.done": "完成。自己试试：twistd -n netsuite --mode chat，然后 nc 127.0.0.1 8023",
    # echo
    "echo.server": "TCP 回显服务器监听 {address}，最多同时 3 个连接。",
    "echo.idle": "客户端 'idle' 连上后什么也不发。阻塞式服务器这时会卡在它的 recv() 上。",
    "echo.busy": "客户端 'busy' 连上并发送一行：虽然 'idle' 还连着，它也立刻得到回显。",
    "echo.got_back": "{who} 收到回显：{data}",
    "echo.third": "客户端 'third' 连上：加上 'idle' 和 'busy' 一共 3 个，达到上限。",
    "echo.connected": "{who} 已连接",
    "echo.fourth": "客户端 'fourth' 是多出来的一个：它收到一行拒绝信息；'third' 不受影响，照样得到回显。",
    "echo.refused": "{who} 收到：{data}",
    "echo.udp": "UDP 回显：客户端 'probe' 发送一个数据报，收到同样的字节，不需要建立连接。",
    "echo.datagram": "{who} 发送了 {size} 字节的数据报；回显回来 {got} 字节",
    "echo.done": "完成。自己试试：twistd -n netsuite --mode echo，然后 netsuite echo 127.0.0.1:8007 hello",
    # upload
    "upload.server": "文件服务器监听 {address}；要发送一张 6 MiB 的图片（sha256 {sha}...）。",
    "upload.cut": "一个客户端开始上传，发了 2 MiB 之后崩溃了。",
    "upload.listed": "服务器现在列出的文件：{names}（不完整的数据不会显示）",
    "upload.resume": "再次上传：服务器告诉客户端它已经有多少字节，客户端只发送剩下的部分（断点续传）。",
    "upload.resuming": "从第 {done} 字节继续，共 {total} 字节",
    "upload.stored": "已保存 {name}：{size} 字节，sha256 一致：{matches}",
    "upload.download": "再下载回来：先写入临时文件，sha256 校验一致后才改名为正式文件。",
    "upload.identical": "{name}：{size} 字节，内容完全相同：{same}",
    "upload.done": "完成。自己试试：twistd -n netsuite --mode upload，然后 netsuite upload 127.0.0.1:8021 文件",
}
