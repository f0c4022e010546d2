"""Your own 7-armed bandit, played by the checkpoint of `python -m headless_ad train bandit --run-name bandit`."""

import gymnasium as gym

from headless_ad import load_agent


class SevenArms(gym.Env):  # arm 3 pays most often
    action_space, observation_space = gym.spaces.Discrete(7), gym.spaces.Discrete(1)

    def step(self, action):
        return 0, float(self.np_random.random() < [0.1, 0.2, 0.3, 0.9, 0.4, 0.5, 0.2][action]), False, False, {}


env, agent, pulls = SevenArms(), load_agent("runs/bandit/checkpoint.pt"), []
agent.reset(env.action_space)  # the actions on offer: all 7 here (or a list of ids, or a mask)
for _ in range(300):
    pulls.append(agent.act())  # a bandit has no observation
    agent.observe(env.step(pulls[-1])[1])  # the reward it paid
print(f"arm 3 (the best) in {pulls[-100:].count(3)} of the last 100 pulls")
